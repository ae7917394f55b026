"""The packaged Alembic revisions: they build exactly the schema's table, and only that."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from jwt_outbound import ConfigurationError
from jwt_outbound._migrate import (
    MIGRATIONS,
    amigrate,
    current_revision,
    downgrade,
    include_object,
    migrate,
)
from jwt_outbound._store.engines import create_sync_engine, parse_url
from jwt_outbound._store.schema import VERSION_TABLE, metadata, tokens

from .databases import BACKENDS, async_url, database_url, drop_tables

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = database_url(request.param, tmp_path)
    drop_tables(url)
    yield url
    drop_tables(url)


@pytest.fixture
def engine(url: str) -> Iterator[sa.Engine]:
    engine = create_sync_engine(parse_url(url))
    yield engine
    engine.dispose()


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def differences(engine: sa.Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_object": include_object,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        return list(compare_metadata(context, metadata))


def test_one_head_and_a_linear_history() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    assert scripts.get_heads() == ["0001"]
    assert [script.revision for script in scripts.walk_revisions()] == ["0001"]


def test_upgrade_builds_exactly_the_schema(url: str, engine: sa.Engine) -> None:
    assert current_revision(url) is None
    migrate(url)
    assert current_revision(url) == "0001"
    assert {tokens.name, VERSION_TABLE} <= table_names(engine)
    assert differences(engine) == []
    migrate(url)  # already at head: nothing to do
    assert current_revision(engine) == "0001"


def test_downgrade_to_base_and_back(url: str, engine: sa.Engine) -> None:
    migrate(engine)
    downgrade(url, "base")
    assert tokens.name not in table_names(engine)
    assert current_revision(url) is None
    migrate(url)
    assert tokens.name in table_names(engine)
    assert differences(engine) == []


def test_the_hosts_alembic_version_is_left_alone(url: str, engine: sa.Engine) -> None:
    host = sa.Table("alembic_version", sa.MetaData(), sa.Column("version_num", sa.String(32)))
    host.drop(engine, checkfirst=True)
    host.create(engine)
    try:
        with engine.begin() as connection:
            connection.execute(host.insert().values(version_num="host_rev_42"))
        migrate(url)
        downgrade(url, "base")
        migrate(url)
        with engine.connect() as connection:
            assert connection.execute(sa.select(host.c.version_num)).scalars().all() == [
                "host_rev_42"
            ]
    finally:
        host.drop(engine)


def test_a_hosts_connection_and_transaction(url: str, engine: sa.Engine) -> None:
    with engine.begin() as connection:
        migrate(connection)
        assert current_revision(connection) == "0001"
    assert tokens.name in table_names(engine)


def test_an_async_engine(url: str) -> None:
    async_engine = create_async_engine(async_url(url))
    migrate(async_engine)
    assert current_revision(async_engine) == "0001"
    downgrade(async_engine, "base")
    assert current_revision(url) is None


@pytest.mark.anyio
async def test_amigrate_inside_an_event_loop(url: str) -> None:
    async_engine = create_async_engine(async_url(url))
    with pytest.raises(ConfigurationError, match="amigrate"):
        migrate(async_engine)
    await amigrate(async_engine)
    await async_engine.dispose()
    assert current_revision(url) == "0001"
    downgrade(url, "base")
    await amigrate(url)
    assert current_revision(url) == "0001"


def test_alembic_command_line_from_the_checkout(tmp_path: Path) -> None:
    database = tmp_path / "cli.db"
    env = {**os.environ, "JWT_OUTBOUND_DATABASE_URL": f"sqlite:///{database}"}

    def alembic(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "alembic", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return done.stdout + done.stderr

    alembic("upgrade", "head")
    assert current_revision(f"sqlite:///{database}") == "0001"
    assert "0001 (head)" in alembic("current")
    alembic("downgrade", "base")
    assert current_revision(f"sqlite:///{database}") is None
    assert "CREATE TABLE jwt_outbound_tokens" in alembic("upgrade", "head", "--sql")


def test_a_host_runs_ours_in_its_transaction_and_its_autogenerate_leaves_ours_alone(
    url: str, engine: sa.Engine
) -> None:
    from jwt_outbound import exclude_jwt_outbound_tables

    host = sa.MetaData()
    orders = sa.Table("host_orders", host, sa.Column("id", sa.Integer, primary_key=True))
    try:
        with engine.begin() as connection:  # the host's own env.py, in one transaction
            host.create_all(connection)
            migrate(connection)
        assert {"host_orders", tokens.name, VERSION_TABLE} <= table_names(engine)
        with engine.connect() as connection:
            unfiltered = compare_metadata(MigrationContext.configure(connection), host)
            context = MigrationContext.configure(
                connection, opts={"include_object": exclude_jwt_outbound_tables}
            )
            filtered = compare_metadata(context, host)
        assert any(diff[0] == "remove_table" for diff in unfiltered)  # what the filter prevents
        assert filtered == []
    finally:
        with engine.begin() as connection:
            orders.drop(connection, checkfirst=True)
