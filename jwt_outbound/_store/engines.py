"""Engines for the SQL store: which driver for which URL, SQLite settings, who disposes what."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .._exceptions import ConfigurationError

__all__ = ["EnginePair", "create_sync_engine", "parse_url", "sync_url"]

SQLITE_BUSY_TIMEOUT_MS = 5000

# Drivers in order of preference, with the module that must be importable for each.
_SYNC_DRIVERS: dict[str, tuple[tuple[str, str], ...]] = {
    "sqlite": (("pysqlite", "sqlite3"),),
    "postgresql": (("psycopg", "psycopg"), ("psycopg2", "psycopg2")),
    "mysql": (("pymysql", "pymysql"), ("mysqldb", "MySQLdb")),
    "mariadb": (("pymysql", "pymysql"), ("mysqldb", "MySQLdb")),
}
# No asyncio driver is picked for SQLite: aiosqlite runs sqlite3 in a thread anyway, with one
# hop per DBAPI call, where a worker thread running the whole call makes one (2x faster here).
# A URL that names sqlite+aiosqlite still gets it.
_ASYNC_DRIVERS: dict[str, tuple[tuple[str, str], ...]] = {
    "sqlite": (),
    "postgresql": (("asyncpg", "asyncpg"), ("psycopg_async", "psycopg")),
    "mysql": (("aiomysql", "aiomysql"), ("asyncmy", "asyncmy")),
    "mariadb": (("aiomysql", "aiomysql"), ("asyncmy", "asyncmy")),
}
_EXTRAS = {"sqlite": "sqlite", "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}


def parse_url(url: str | URL, *, allow_memory: bool = False) -> URL:
    """Parse and check a database URL; the error never repeats the URL (it may hold a password)."""
    try:
        parsed: URL | None = make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        parsed = None
    if parsed is None:
        raise ConfigurationError(
            "the database URL cannot be parsed: use e.g. sqlite:///tokens.db, "
            "postgresql://user:password@host/db or mysql://user:password@host/db"
        )
    backend = parsed.get_backend_name()
    if backend not in _SYNC_DRIVERS:
        raise ConfigurationError(
            f"SQLTokenStore does not support {backend!r} databases: "
            "use SQLite, PostgreSQL, MySQL or MariaDB"
        )
    try:
        parsed.get_dialect()
    except sa.exc.NoSuchModuleError:
        raise ConfigurationError(
            f"SQLAlchemy has no database driver {parsed.drivername!r}"
        ) from None
    if not allow_memory and _sqlite_in_memory(parsed):
        raise ConfigurationError(
            "an in-memory SQLite database is private to one connection, so workers cannot "
            "share it: use MemoryTokenStore, or a SQLite file such as sqlite:///tokens.db"
        )
    return parsed


def _sqlite_in_memory(url: URL) -> bool:
    database = url.database or ""
    return (
        database in ("", ":memory:")
        or "mode=memory" in database
        or (url.query.get("mode") == "memory")
    )


def _names_driver(url: URL) -> bool:
    # get_driver_name() would answer the dialect's default driver for a bare "mysql://".
    return "+" in url.drivername


def _is_async(url: URL) -> bool:
    return bool(getattr(url.get_dialect(), "is_async", False))


def _pick(url: URL, drivers: dict[str, tuple[tuple[str, str], ...]]) -> URL | None:
    for driver, module in drivers[url.get_backend_name()]:
        if importlib.util.find_spec(module) is not None:
            return url.set(drivername=f"{url.get_backend_name()}+{driver}")
    return None


def sync_url(url: URL) -> URL:
    """The URL with a blocking driver: as given when it names one, else the best installed."""
    if _names_driver(url) and not _is_async(url):
        return url
    picked = _pick(url, _SYNC_DRIVERS)
    if picked is None:
        backend = url.get_backend_name()
        raise ConfigurationError(
            f"no blocking {backend} driver is installed: "
            f"pip install 'jwt-outbound[{_EXTRAS[backend]}]'"
        )
    return picked


def _async_url(url: URL) -> URL | None:
    """The URL with an asyncio driver, or None when none is installed (use worker threads)."""
    if _names_driver(url) and _is_async(url):
        return url
    return _pick(url, _ASYNC_DRIVERS)


def _engine_options(url: URL, echo: bool) -> dict[str, Any]:
    # hide_parameters: tokens are parameters, and must not reach echo or error messages.
    options: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if url.get_backend_name() != "sqlite":
        options["pool_pre_ping"] = True  # a restarted server must not fail the first request
    return options


def _on_sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # WAL lets readers go on while one worker writes; busy_timeout makes writers queue
    # instead of failing at once with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


# Seconds to wait for a database server to accept a connection: an unreachable server must
# become a prompt StoreError, not a request hanging for a minute or more.
CONNECT_TIMEOUT = 5
_CONNECT_TIMEOUT_ARG = {
    "psycopg": "connect_timeout",
    "psycopg2": "connect_timeout",
    "asyncpg": "timeout",
    "pymysql": "connect_timeout",
    "aiomysql": "connect_timeout",
    "mysqldb": "connect_timeout",
}


def _connect_args(driver_url: URL) -> dict[str, Any]:
    name = _CONNECT_TIMEOUT_ARG.get(driver_url.get_driver_name())
    if name is None or name in driver_url.query:
        return {}
    return {"connect_args": {name: CONNECT_TIMEOUT}}


def create_sync_engine(url: URL, *, echo: bool = False, **options: Any) -> Engine:
    driver_url = sync_url(url)
    options = {**_connect_args(driver_url), **options}
    engine = sa.create_engine(driver_url, **_engine_options(url, echo), **options)
    if url.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _on_sqlite_connect)
    return engine


def _create_async_engine(url: URL, *, echo: bool) -> AsyncEngine:
    engine = create_async_engine(url, **_engine_options(url, echo), **_connect_args(url))
    if url.get_backend_name() == "sqlite":
        sa.event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    return engine


class EnginePair:
    """The blocking engine and, where an asyncio driver exists, the async engine of a store.

    Both are created on first use. Engines the caller passed in are used, never disposed.
    An async engine's connections belong to the event loop that opened them, so the async
    engine serves one loop; calls from any other loop go through the blocking engine in a
    worker thread.
    """

    def __init__(
        self,
        url: URL,
        *,
        echo: bool = False,
        sync_engine: Engine | None = None,
        async_engine: AsyncEngine | None = None,
        use_async: bool = True,
    ) -> None:
        self.url = url
        self._echo = echo
        self._lock = threading.Lock()
        self._sync = sync_engine
        self._owns_sync = sync_engine is None
        self._async = async_engine
        self._owns_async = async_engine is None
        self._use_async = use_async
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_argument(
        cls, url_or_engine: str | URL | Engine | AsyncEngine, *, echo: bool
    ) -> EnginePair:
        if isinstance(url_or_engine, Engine):
            # A blocking engine chosen by the caller: async calls use worker threads.
            url = parse_url(url_or_engine.url, allow_memory=True)
            return cls(url, sync_engine=url_or_engine, use_async=False)
        if isinstance(url_or_engine, AsyncEngine):
            url = parse_url(url_or_engine.url, allow_memory=True)
            return cls(url, echo=echo, async_engine=url_or_engine)
        return cls(parse_url(url_or_engine), echo=echo)

    @property
    def in_use(self) -> list[Engine]:
        """The engines in use so far, an async engine as its ``sync_engine``."""
        engines = [self._sync] if self._sync is not None else []
        if self._async is not None:
            engines.append(self._async.sync_engine)
        return engines

    def sync(self) -> Engine:
        with self._lock:
            if self._sync is None:
                if _sqlite_in_memory(self.url):
                    raise ConfigurationError(
                        "blocking calls need their own engine, and a second engine on an "
                        "in-memory SQLite database sees another, empty database: pass a URL "
                        "or a blocking Engine to SQLTokenStore"
                    )
                self._sync = create_sync_engine(self.url, echo=self._echo)
            return self._sync

    def for_running_loop(self) -> AsyncEngine | None:
        """The async engine if this loop may use it; None means: use a worker thread."""
        loop = _running_loop()
        if loop is None:
            return None  # not asyncio (trio, say): the asyncio drivers cannot run here
        with self._lock:
            if not self._use_async:
                return None
            if self._async is None:
                url = _async_url(self.url)
                if url is None:
                    self._use_async = False
                    return None
                self._async = _create_async_engine(url, echo=self._echo)
            if self._loop is None:
                self._loop = loop
            return self._async if self._loop is loop else None

    def dispose(self) -> None:
        """Close the pooled connections of the engines this pair created."""
        with self._lock:
            sync = self._take_sync()
            engine, loop = self._take_async()
        if sync is not None:
            sync.dispose()
        if engine is None:
            return
        running = _running_loop()
        if loop is None or loop.is_closed():
            _forget(engine)
        elif loop is running:
            # Called from inside that loop without awaiting: let the loop do it soon.
            task = loop.create_task(engine.dispose())
            _pending.add(task)
            task.add_done_callback(_pending.discard)
        elif loop.is_running():
            asyncio.run_coroutine_threadsafe(engine.dispose(), loop).result(timeout=30)
        elif running is None:
            loop.run_until_complete(engine.dispose())
        else:
            _forget(engine)  # an idle loop cannot run while this thread runs another

    async def adispose(self) -> None:
        with self._lock:
            sync = self._take_sync()
            engine, loop = self._take_async()
        if engine is not None:
            if loop is None or loop is asyncio.get_running_loop():
                await engine.dispose()
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(engine.dispose(), loop)
                await asyncio.wrap_future(future)
            else:
                _forget(engine)
        if sync is not None:
            await anyio.to_thread.run_sync(sync.dispose)

    def _take_sync(self) -> Engine | None:
        engine = self._sync if self._owns_sync else None
        if self._owns_sync:
            self._sync = None
        return engine

    def _take_async(self) -> tuple[AsyncEngine | None, asyncio.AbstractEventLoop | None]:
        engine, loop = self._async, self._loop
        self._loop = None
        if not self._owns_async:
            return None, None
        self._async = None
        return engine, loop


_pending: set[asyncio.Task[None]] = set()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _forget(engine: AsyncEngine) -> None:
    # Its connections belong to a loop that cannot run them now: drop them from the pool
    # unclosed (the server ends them) rather than touch them from the wrong loop.
    engine.sync_engine.dispose(close=False)
