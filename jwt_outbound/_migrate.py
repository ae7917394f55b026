"""Create and upgrade the token table with the Alembic revisions shipped in this package.

The revisions keep their own version table (``jwt_outbound_alembic_version``) and touch only
our table, so they live safely in a database whose other tables a host application migrates
with its own Alembic setup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, Union

import anyio.to_thread
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import pool
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ._exceptions import ConfigurationError
from ._store.engines import create_sync_engine, parse_url
from ._store.schema import VERSION_TABLE, metadata
from ._store.sql import default_database_url

__all__ = [
    "amigrate",
    "current_revision",
    "downgrade",
    "exclude_jwt_outbound_tables",
    "include_object",
    "migrate",
]

# Wheels ship the revisions inside the package; a source checkout keeps them at its top level.
MIGRATIONS = next(
    where
    for where in (Path(__file__).parent / "migrations", Path(__file__).parent.parent / "migrations")
    if (where / "env.py").exists()
)

T = TypeVar("T")

Database = Union[str, URL, Engine, Connection, AsyncEngine, AsyncConnection, None]  # noqa: UP007


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's filter: only our own tables; the host's tables are not ours to compare."""
    return type_ != "table" or name in metadata.tables


def exclude_jwt_outbound_tables(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """For the host application's ``env.py``: ``include_object=exclude_jwt_outbound_tables``
    keeps its autogenerate from proposing to drop our tables, which our revisions manage."""
    return type_ != "table" or (name not in metadata.tables and name != VERSION_TABLE)


def migrate(url_or_engine: Database = None, revision: str = "head") -> None:
    """Upgrade the token table to ``revision`` (default: the newest).

    Takes a URL (``None``: :func:`~jwt_outbound.default_database_url`), an Engine, a
    Connection (its transaction is the caller's to commit), or an AsyncEngine when no event
    loop runs in this thread; in async code use ``await amigrate(...)``.
    """
    _run(url_or_engine, lambda connection: _upgrade(connection, revision))


def downgrade(url_or_engine: Database, revision: str) -> None:
    """Downgrade to ``revision``; ``"base"`` drops the token table and our version table."""
    _run(url_or_engine, lambda connection: _downgrade(connection, revision))


def current_revision(url_or_engine: Database = None) -> str | None:
    """The revision the database is at, or None before the first :func:`migrate`."""
    return _run(url_or_engine, _current)


async def amigrate(url_or_engine: Database = None, revision: str = "head") -> None:
    """:func:`migrate` for async code: never blocks the event loop."""
    if isinstance(url_or_engine, AsyncEngine):
        async with url_or_engine.begin() as connection:
            await connection.run_sync(_upgrade, revision)
    elif isinstance(url_or_engine, AsyncConnection):
        await url_or_engine.run_sync(_upgrade, revision)
    else:
        await anyio.to_thread.run_sync(migrate, url_or_engine, revision)


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(_config(connection), revision)


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(_config(connection), revision)


def _current(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _run(url_or_engine: Database, operation: Callable[[Connection], T]) -> T:
    if isinstance(url_or_engine, Connection):
        return operation(url_or_engine)
    if isinstance(url_or_engine, Engine):
        with url_or_engine.begin() as connection:
            return operation(connection)
    if isinstance(url_or_engine, AsyncEngine):
        return _run_async(url_or_engine, operation)
    if isinstance(url_or_engine, AsyncConnection):
        raise ConfigurationError(
            "an AsyncConnection belongs to a running event loop: use `await amigrate(connection)`"
        )
    url = parse_url(default_database_url() if url_or_engine is None else url_or_engine)
    engine = create_sync_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            return operation(connection)
    finally:
        engine.dispose()


def _run_async(engine: AsyncEngine, operation: Callable[[Connection], T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise ConfigurationError(
            "migrate() blocks, and an async engine can only be driven from its event loop: "
            "inside async code use `await jwt_outbound.amigrate(engine)`"
        )

    async def run() -> T:
        try:
            async with engine.begin() as connection:
                return await connection.run_sync(operation)
        finally:
            # This loop ends here: its connections must not stay in the engine's pool.
            await engine.dispose()

    return asyncio.run(run())
