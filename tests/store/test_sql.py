"""What only the SQL store has: drivers and engines, failures, secrets, SQLite settings."""

from __future__ import annotations

import asyncio
import logging
import traceback
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from jwt_outbound import ConfigurationError, StoreError, TokenState
from jwt_outbound._migrate import migrate
from jwt_outbound._store import SQLTokenStore, default_database_url
from jwt_outbound._store import engines as engines_module

from ..databases import BACKENDS, async_url, database_url, drop_tables, unique_tenant
from .conftest import checked_out

SECRET = "eyJ-SECRET-TOKEN-VALUE"
PASSWORD = "hunter2-password"


def secret_state(tenant: str) -> TokenState:
    return TokenState(tenant=tenant, token=SECRET, refresh_token=SECRET + "-refresh", version=1)


@pytest.fixture
def url(migrated_url: str) -> str:
    return migrated_url


def assert_hides_secrets(error: BaseException) -> None:
    shown = "".join(traceback.format_exception(error)) + repr(error)
    for secret in (SECRET, PASSWORD):
        assert secret not in shown
    # The driver's exception is not chained either: it could quote the statement's parameters.
    assert error.__cause__ is None
    assert error.__context__ is None


# -- failures ------------------------------------------------------------------------------

UNREACHABLE = [
    pytest.param(f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/test", id="postgres"),
    pytest.param(f"mysql://root:{PASSWORD}@127.0.0.1:1/test", id="mysql"),
    pytest.param("sqlite:///{tmp}/no/such/dir/tokens.db", id="sqlite"),
]


@pytest.mark.parametrize("target", UNREACHABLE)
def test_outage_raises_store_error_without_values(target: str, tmp_path: Path) -> None:
    store = SQLTokenStore(target.format(tmp=tmp_path))
    tenant = unique_tenant()
    try:
        with pytest.raises(StoreError) as caught:
            store.save(secret_state(tenant), expected_version=None)
        assert caught.value.tenant == tenant
        assert str(caught.value).startswith(f"could not insert tenant {tenant!r}: ")
        assert_hides_secrets(caught.value)

        async def save() -> None:
            await store.asave(secret_state(tenant), expected_version=None)

        with pytest.raises(StoreError) as caught:
            asyncio.run(save())
        assert caught.value.tenant == tenant
        assert_hides_secrets(caught.value)
    finally:
        store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_table_says_to_migrate(backend: str, tmp_path: Path) -> None:
    target = database_url(backend, tmp_path)
    drop_tables(target)
    store = SQLTokenStore(target)
    try:
        with pytest.raises(StoreError, match=r"run jwt_outbound\.migrate"):
            store.get("acme")
        with pytest.raises(StoreError, match=r"could not list tenants: .*migrate"):
            store.states()
        assert checked_out(store) == [0]
    finally:
        store.close()


def test_extra_must_be_json(url: str) -> None:
    store = SQLTokenStore(url)
    tenant = unique_tenant()
    try:
        state = secret_state(tenant).replace(extra={"when": object()})
        with pytest.raises(StoreError, match="JSON-serializable") as caught:
            store.save(state, expected_version=None)
        assert_hides_secrets(caught.value)
        assert store.get(tenant) is None
    finally:
        store.close()


def test_conflicts_and_errors_return_their_connections(url: str) -> None:
    store = SQLTokenStore(url)
    state = secret_state(unique_tenant())
    try:
        assert store.save(state, expected_version=None) is True
        assert store.save(state, expected_version=None) is False
        with pytest.raises(StoreError):
            store.save(state.replace(extra={"x": {1, 2}}), expected_version=1)
        assert checked_out(store) == [0]
    finally:
        store.close()


# -- secrets -------------------------------------------------------------------------------


def test_repr_masks_the_password() -> None:
    store = SQLTokenStore(f"postgresql://app:{PASSWORD}@db.internal:5432/tokens")
    assert repr(store) == "SQLTokenStore('postgresql://app:***@db.internal:5432/tokens')"
    engine = sa.create_engine(f"mysql+pymysql://app:{PASSWORD}@db.internal/tokens")
    assert PASSWORD not in repr(SQLTokenStore(engine))
    engine.dispose()


def test_echo_logs_statements_but_not_tokens(url: str, caplog: pytest.LogCaptureFixture) -> None:
    store = SQLTokenStore(url, echo=True)
    tenant = unique_tenant()
    try:
        with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
            store.save(secret_state(tenant), expected_version=None)
            store.acquire_lease(tenant, version=1, owner="worker-1", seconds=5)
            assert store.get(tenant) is not None

            async def use_async() -> None:
                await store.asave(secret_state(tenant).replace(version=2), expected_version=1)
                await store.aclose()

            asyncio.run(use_async())
    finally:
        store.close()
        # echo=True added handlers that write to this test's captured stdout: remove them.
        for name in ("sqlalchemy.engine.Engine",):
            logging.getLogger(name).handlers.clear()
    logged = caplog.text
    assert "INSERT INTO jwt_outbound_tokens" in logged
    assert "UPDATE jwt_outbound_tokens" in logged
    assert "parameters hidden" in logged
    for secret in (SECRET, tenant, "worker-1"):
        assert secret not in logged


def test_bad_urls_never_echo_the_password() -> None:
    for target in (
        f"postgresql://app:{PASSWORD}@host:notaport/db",
        f"oracle://app:{PASSWORD}@h/db",
    ):
        with pytest.raises(ConfigurationError) as caught:
            SQLTokenStore(target)
        assert PASSWORD not in str(caught.value)
        assert caught.value.__context__ is None


@pytest.mark.parametrize("target", ["sqlite://", "sqlite:///:memory:", "sqlite+aiosqlite://"])
def test_in_memory_sqlite_is_refused(target: str) -> None:
    with pytest.raises(ConfigurationError, match="MemoryTokenStore"):
        SQLTokenStore(target)


def test_unknown_driver_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no database driver 'postgresql\\+nope'"):
        SQLTokenStore("postgresql+nope://u@h/db")


# -- drivers and engines -------------------------------------------------------------------


@pytest.mark.anyio
async def test_plain_urls_get_a_blocking_and_an_asyncio_driver(url: str) -> None:
    store = SQLTokenStore(url)
    tenant = unique_tenant()
    assert await store.asave(secret_state(tenant), expected_version=None) is True
    assert store.get(tenant) == await store.aget(tenant)
    drivers = {engine.dialect.driver for engine in store._engines.in_use}
    backend = sa.make_url(url).get_backend_name()
    assert (
        drivers
        == {
            "sqlite": {"pysqlite"},  # async calls run sqlite3 in worker threads
            "postgresql": {"psycopg", "asyncpg"},
            "mysql": {"pymysql", "aiomysql"},
        }[backend]
    )
    await store.aclose()
    assert store._engines.in_use == []


@pytest.mark.anyio
async def test_a_blocking_engine_serves_async_calls_from_threads(url: str) -> None:
    engine = engines_module.create_sync_engine(sa.make_url(url))
    store = SQLTokenStore(engine)
    tenant = unique_tenant()
    assert await store.asave(secret_state(tenant), expected_version=None) is True
    assert (await store.aget(tenant)) == store.get(tenant)
    assert store._engines.in_use == [engine]
    await store.aclose()
    store.close()
    # Not ours to dispose: its pooled connection is still there.
    assert engine.pool.checkedin() >= 1
    engine.dispose()


@pytest.mark.anyio
async def test_an_async_engine_gets_a_blocking_twin(url: str) -> None:
    async_engine = create_async_engine(async_url(url))
    store = SQLTokenStore(async_engine)
    tenant = unique_tenant()
    assert store.save(secret_state(tenant), expected_version=None) is True
    assert await store.aget(tenant) == store.get(tenant)
    await store.aclose()
    # The caller's engine still works: only the blocking twin was disposed.
    async with async_engine.connect() as connection:
        assert (await connection.execute(sa.text("SELECT 1"))).scalar() == 1
    await async_engine.dispose()


@pytest.mark.anyio
async def test_without_an_asyncio_driver_async_calls_use_threads(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = (("nope", "jwt_outbound_no_such_driver"),)
    monkeypatch.setattr(
        engines_module, "_ASYNC_DRIVERS", dict.fromkeys(engines_module._ASYNC_DRIVERS, missing)
    )
    store = SQLTokenStore(url)
    tenant = unique_tenant()
    assert await store.asave(secret_state(tenant), expected_version=None) is True
    assert await store.aacquire_lease(tenant, version=1, owner="a", seconds=5) is True
    assert [engine.dialect.is_async for engine in store._engines.in_use] == [False]
    await store.aclose()


def test_other_event_loops_use_threads(url: str) -> None:
    store = SQLTokenStore(async_url(url))
    tenant = unique_tenant()
    first = asyncio.new_event_loop()
    try:
        assert first.run_until_complete(store.asave(secret_state(tenant), expected_version=None))
        # A second loop may not touch the first loop's connections; it gets the same answers.
        assert asyncio.run(store.aget(tenant)) == store.get(tenant)
        assert len(store._engines.in_use) == 2
        store.close()  # disposes the async engine inside the loop its connections belong to
        assert store._engines.in_use == []
    finally:
        first.close()


# -- defaults and SQLite ---------------------------------------------------------------------


def test_default_database_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JWT_OUTBOUND_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_database_url() == f"sqlite:///{tmp_path / 'jwt_outbound.db'}"
    monkeypatch.setenv("JWT_OUTBOUND_DATABASE_URL", "postgresql://u:pw@db/x")
    assert default_database_url() == "postgresql://u:pw@db/x"
    assert repr(SQLTokenStore()) == "SQLTokenStore('postgresql://u:***@db/x')"


def test_a_new_sqlite_file_is_created_in_wal_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("JWT_OUTBOUND_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    migrate()
    assert (tmp_path / "jwt_outbound.db").exists()
    store = SQLTokenStore()
    try:
        store.save(secret_state("acme"), expected_version=None)
        with store._engines.sync().connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA busy_timeout").scalar() == 5000
    finally:
        store.close()
