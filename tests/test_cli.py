"""``jwt-outbound``: migrate, login, status and logout against a SQLite file and the issuer."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from jwt_outbound import SQLTokenStore
from jwt_outbound._cli import main

from .issuer import PASSWORD, Issuer


def test_migrate_login_status_logout(
    tmp_path: Path,
    base_url: str,
    issuer: Issuer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    (tmp_path / "cli_settings.py").write_text(
        "from jwt_outbound import Endpoint, JWTConfig\n"
        f"config = JWTConfig(login=Endpoint({base_url + '/auth'!r}))\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JWT_OUTBOUND_DATABASE_URL", url)

    assert main(["migrate"]) == 0
    assert "revision 0001" in capsys.readouterr().out

    monkeypatch.setattr(
        "sys.stdin", io.StringIO(json.dumps({"username": "acme", "password": PASSWORD}))
    )
    assert main(["login", "acme", "--config", "cli_settings:config"]) == 0
    assert "acme: logged in" in capsys.readouterr().out
    store = SQLTokenStore(url)
    state = store.get("acme")
    store.close()
    assert state is not None

    assert main(["status", "--json"]) == 0
    out = capsys.readouterr().out
    status = json.loads(out)
    assert status["revision"] == "0001"
    assert [(t["tenant"], t["token"], t["refresh_token"]) for t in status["tenants"]] == [
        ("acme", "valid", True)
    ]
    assert state.token not in out
    assert state.refresh_token is not None
    assert state.refresh_token not in out

    assert main(["status"]) == 0
    table = capsys.readouterr().out
    assert "acme" in table
    assert state.token not in table

    assert main(["logout", "acme", "--database-url", url]) == 0
    assert "acme: logged out" in capsys.readouterr().out
    assert main(["logout", "acme"]) == 0
    assert "was not logged in" in capsys.readouterr().out


def test_errors_are_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    monkeypatch.setattr("sys.stdin", io.StringIO("{}"))
    assert main(["login", "acme", "--config", "nowhere:config", "--database-url", url]) == 1
    assert "cannot load 'nowhere:config'" in capsys.readouterr().err
    assert main(["logout", "bad tenant", "--database-url", url]) == 1
    assert "invalid tenant id" in capsys.readouterr().err


def test_rotate_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.fernet import Fernet

    from jwt_outbound import TokenState, migrate

    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    migrate(url)
    plain = SQLTokenStore(url)
    plain.save(TokenState(tenant="acme", token="SECRET"), expected_version=None)
    plain.close()
    assert main(["rotate-keys", "--database-url", url]) == 1
    assert "JWT_OUTBOUND_ENCRYPTION_KEYS" in capsys.readouterr().err

    key = Fernet.generate_key().decode()
    monkeypatch.setenv("JWT_OUTBOUND_ENCRYPTION_KEYS", key)
    assert main(["rotate-keys", "--database-url", url]) == 0
    assert "re-encrypted 1 row(s)" in capsys.readouterr().out
    sealed = SQLTokenStore(url)
    assert sealed.get("acme") == TokenState(tenant="acme", token="SECRET")
    sealed.close()
