"""Steady state costs no SQL; the row is read again near expiry, after a 401, or when the copy ages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from jwt_outbound import JWTConfig, SQLTokenStore, migrate

from .conftest import CREDENTIALS
from .issuer import Issuer

pytestmark = pytest.mark.anyio


class Counted:
    """A SQLite engine that counts the statements sent through it."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, hide_parameters=True)
        self.statements: list[str] = []
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement.split()[0].upper())

    def take(self) -> list[str]:
        seen, self.statements = self.statements, []
        return seen


@pytest.fixture
def counted(tmp_path: Path) -> Iterator[Counted]:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    migrate(url)
    counted = Counted(url)
    yield counted
    assert counted.engine.pool.checkedout() == 0
    counted.engine.dispose()


async def test_valid_token_costs_no_sql_per_request(
    make: Any, config: JWTConfig, counted: Counted
) -> None:
    h = make(config, store=SQLTokenStore(counted.engine), state_ttl=60)
    await h.call("login", "acme", CREDENTIALS)
    await h.get("acme", "/api/whoami")
    counted.take()

    for _ in range(20):
        assert (await h.get("acme", "/api/whoami")).status_code == 200

    assert counted.take() == []


async def test_an_aged_copy_is_read_again_once(
    make: Any, config: JWTConfig, counted: Counted
) -> None:
    h = make(config, store=SQLTokenStore(counted.engine), state_ttl=0.2)
    await h.call("login", "acme", CREDENTIALS)
    counted.take()
    await anyio.sleep(0.3)

    for _ in range(5):
        await h.get("acme", "/api/whoami")

    assert counted.take() == ["SELECT"]


async def test_a_logout_elsewhere_is_honoured_within_the_bound(
    make: Any, config: JWTConfig, counted: Counted, issuer: Issuer
) -> None:
    worker = make(config, store=SQLTokenStore(counted.engine), state_ttl=0.3)
    other = make(config, store=SQLTokenStore(counted.engine))
    await worker.call("login", "acme", CREDENTIALS)
    assert (await worker.get("acme", "/public")).json()["authorization"] is not None

    assert await other.call("logout", "acme") is True
    await anyio.sleep(0.4)

    assert (await worker.get("acme", "/public")).json() == {"authorization": None}


async def test_a_refresh_by_another_worker_is_picked_up_from_the_row(
    make: Any, config: JWTConfig, counted: Counted, issuer: Issuer
) -> None:
    first = make(config, store=SQLTokenStore(counted.engine), state_ttl=60)
    second = make(config, store=SQLTokenStore(counted.engine), state_ttl=60)
    issuer.token_ttl = -10
    await first.call("login", "acme", CREDENTIALS)
    issuer.token_ttl = 300
    await second.get("acme", "/api/whoami")  # reads the expired row, refreshes it
    renewed = await second.call("state", "acme")

    response = await first.get("acme", "/api/echo")  # its copy is expired: reads the row

    assert response.json()["headers"]["authorization"] == f"Bearer {renewed.token}"
    assert issuer.refresh_calls == 1
    assert issuer.reuse == 0


async def test_the_event_loop_runs_on_while_the_database_is_locked(
    tmp_path: Path, config: JWTConfig
) -> None:
    import sqlite3

    from jwt_outbound import AsyncTokenManager, TokenState

    path = tmp_path / "locked.db"
    url = f"sqlite:///{path}"
    migrate(url)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with AsyncTokenManager(config, store=SQLTokenStore(url)) as manager:
        await manager.store.asave(TokenState(tenant="acme", token="t"), expected_version=None)
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another process is writing
        done = anyio.Event()
        result: list[bool] = []

        async def logout() -> None:
            result.append(await manager.logout("acme"))  # its DELETE waits for the lock
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(tick)
            tg.start_soon(logout)
            await anyio.sleep(0.5)
            assert result == []  # still waiting on the lock...
            assert ticks >= 20  # ...while the loop went on
            blocker.execute("COMMIT")
            with anyio.fail_after(5):
                await done.wait()
            tg.cancel_scope.cancel()
        blocker.close()
        await manager.store.aclose()
    assert result == [True]
