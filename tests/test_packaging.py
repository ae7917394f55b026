"""The wheel carries the migrations, and they run from an installed package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_and_runs_the_migrations(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("jwt_outbound-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "jwt_outbound/migrations/env.py" in names
    assert "jwt_outbound/migrations/versions/0001_create_tokens.py" in names
    assert "jwt_outbound/py.typed" in names
    assert not any(name.startswith(("tests/", "example_app/", "bench/")) for name in names)

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import jwt_outbound, jwt_outbound._migrate as m; "
        "assert str(m.MIGRATIONS).startswith(sys.argv[1]), m.MIGRATIONS; "
        "jwt_outbound.migrate(sys.argv[2]); print(jwt_outbound.current_revision(sys.argv[2]))"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script, str(site), url],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip() == "0001"
