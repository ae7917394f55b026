"""The databases the SQL tests run against: SQLite always, PostgreSQL and MariaDB when named.

JWT_OUTBOUND_TEST_POSTGRES=postgresql://postgres@127.0.0.1:5432/test
JWT_OUTBOUND_TEST_MYSQL=mysql://root@127.0.0.1:3306/test
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from jwt_outbound._store.engines import create_sync_engine, parse_url
from jwt_outbound._store.schema import VERSION_TABLE, tokens

SERVERS = {
    "postgres": ("JWT_OUTBOUND_TEST_POSTGRES", "PostgreSQL"),
    "mysql": ("JWT_OUTBOUND_TEST_MYSQL", "MariaDB/MySQL"),
}

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]


def database_url(backend: str, tmp_path: Path) -> str:
    """A URL for ``backend``; skips the test when that server is not configured."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'tokens.db'}"
    if backend == "aiosqlite":  # chosen only when named: plain SQLite URLs use threads
        return f"sqlite+aiosqlite:///{tmp_path / 'tokens.db'}"
    variable, name = SERVERS[backend]
    url = os.environ.get(variable)
    if not url:
        if os.environ.get("JWT_OUTBOUND_REQUIRE_DATABASES"):  # CI: a skip would hide a gap
            pytest.fail(f"{variable} is not set but JWT_OUTBOUND_REQUIRE_DATABASES is")
        pytest.skip(f"set {variable} to run against {name}")
    return url


# Every asyncio driver SQLTokenStore can use, named explicitly.
ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg", "mysql": "aiomysql"}


def async_url(url: str) -> sa.URL:
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    return parsed.set(drivername=f"{backend}+{ASYNC_DRIVERS[backend]}")


def drop_tables(url: str) -> None:
    """Remove our table and version table (never anything else in the test database)."""
    engine = create_sync_engine(parse_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            tokens.drop(connection, checkfirst=True)
            sa.Table(VERSION_TABLE, sa.MetaData()).drop(connection, checkfirst=True)
    finally:
        engine.dispose()


def unique_tenant(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
