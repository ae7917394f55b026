"""SQLTokenStore: token state in one SQL row per tenant, shared by every worker."""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, Row
from sqlalchemy.ext.asyncio import AsyncEngine

from .._exceptions import StoreError
from .._state import TokenState
from .base import TokenStore
from .cipher import Cipher, FernetCipher
from .engines import EnginePair
from .schema import db_epoch, tokens, utc_now

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["DATABASE_URL_ENV", "ENCRYPTION_KEYS_ENV", "SQLTokenStore", "default_database_url"]

DATABASE_URL_ENV = "JWT_OUTBOUND_DATABASE_URL"
ENCRYPTION_KEYS_ENV = "JWT_OUTBOUND_ENCRYPTION_KEYS"

T = TypeVar("T")

# OSError / TimeoutError: some async drivers let connect failures through unwrapped.
_FAILURES = (sa.exc.SQLAlchemyError, OSError, asyncio.TimeoutError)


def default_database_url() -> str:
    """``$JWT_OUTBOUND_DATABASE_URL``, else the SQLite file ``jwt_outbound.db`` in the cwd."""
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{Path.cwd() / 'jwt_outbound.db'}"


class SQLTokenStore(TokenStore):
    """Token state in the ``jwt_outbound_tokens`` table, one row per tenant.

    ``url_or_engine`` is one of:

    - a URL (``sqlite:///tokens.db``, ``postgresql://...``, ``mysql://...``, ``mariadb://...``;
      ``None`` means :func:`default_database_url`). Blocking calls use psycopg / PyMySQL /
      sqlite3; async calls use asyncpg / aiomysql when installed, else (and for SQLite, unless
      the URL says ``sqlite+aiosqlite``) the blocking driver in a worker thread. The store owns
      these engines and ``close()`` disposes them.
    - a blocking ``Engine``: used as is for blocking calls; async calls run it in worker
      threads. Create it with ``hide_parameters=True`` so that tokens never reach its logs.
    - an ``AsyncEngine``: used for async calls. Blocking calls (the sync ``TokenManager``, the
      CLI) get a blocking engine made from the same URL, without the AsyncEngine's
      ``connect_args``; pass a URL or an Engine if those matter.

    An async engine's connections belong to the event loop that opened them: async calls from
    any other loop run in worker threads, and ``await store.aclose()`` belongs in that loop.

    ``encryption_keys`` (default: ``$JWT_OUTBOUND_ENCRYPTION_KEYS``, comma-separated) encrypts
    the token, the refresh token and ``extra`` at rest with Fernet: the first key encrypts, every
    key decrypts. To rotate, put the new key first and call :meth:`rotate_encryption`; rows
    written before encryption was turned on stay readable.

    The table comes from :func:`jwt_outbound.migrate`. Each method is one short transaction.
    Leases are judged by the database server's clock. Failures raise :class:`StoreError`,
    naming the tenant and the error class, never a value sent to the database.
    """

    def __init__(
        self,
        url_or_engine: str | URL | Engine | AsyncEngine | None = None,
        *,
        echo: bool = False,
        encryption_keys: Sequence[str | bytes] | None = None,
    ) -> None:
        if url_or_engine is None:
            url_or_engine = default_database_url()
        if encryption_keys is None and os.environ.get(ENCRYPTION_KEYS_ENV):
            encryption_keys = os.environ[ENCRYPTION_KEYS_ENV].split(",")
        self._cipher = FernetCipher(encryption_keys) if encryption_keys is not None else Cipher()
        self._engines = EnginePair.from_argument(url_or_engine, echo=echo)

    def __repr__(self) -> str:
        return f"SQLTokenStore({self._engines.url.render_as_string(hide_password=True)!r})"

    # -- blocking ---------------------------------------------------------------------------

    def get(self, tenant: str) -> TokenState | None:
        return self._run("read", tenant, _get, tenant, self._cipher)

    def save(self, state: TokenState, *, expected_version: int | None) -> bool:
        if expected_version is None:
            return self._run("insert", state.tenant, _insert, state, self._cipher, conflict=False)
        return self._run("update", state.tenant, _update, state, expected_version, self._cipher)

    def delete(self, tenant: str, *, expected_version: int | None = None) -> bool:
        return self._run("delete", tenant, _delete, tenant, expected_version)

    def states(self) -> list[TokenState]:
        return self._run("list tenants", None, _states, self._cipher)

    def acquire_lease(self, tenant: str, *, version: int, owner: str, seconds: float) -> bool:
        return self._run("lease", tenant, _acquire_lease, tenant, version, owner, seconds)

    def release_lease(self, tenant: str, *, owner: str) -> None:
        self._run("release the lease of", tenant, _release_lease, tenant, owner)

    def rotate_encryption(self) -> int:
        """Seal every row again with the first encryption key (also encrypts rows written
        before encryption was on); returns how many rows changed. Rows a worker rewrites
        meanwhile are skipped: that write already used the first key."""
        return self._run("re-encrypt", None, _reseal, self._cipher)

    def close(self) -> None:
        self._engines.dispose()

    # -- async: the asyncio driver where there is one, else the blocking call in a thread ---

    async def aget(self, tenant: str) -> TokenState | None:
        return await self._arun("read", tenant, _get, tenant, self._cipher)

    async def asave(self, state: TokenState, *, expected_version: int | None) -> bool:
        if expected_version is None:
            return await self._arun(
                "insert", state.tenant, _insert, state, self._cipher, conflict=False
            )
        return await self._arun(
            "update", state.tenant, _update, state, expected_version, self._cipher
        )

    async def adelete(self, tenant: str, *, expected_version: int | None = None) -> bool:
        return await self._arun("delete", tenant, _delete, tenant, expected_version)

    async def astates(self) -> list[TokenState]:
        return await self._arun("list tenants", None, _states, self._cipher)

    async def aacquire_lease(
        self, tenant: str, *, version: int, owner: str, seconds: float
    ) -> bool:
        return await self._arun("lease", tenant, _acquire_lease, tenant, version, owner, seconds)

    async def arelease_lease(self, tenant: str, *, owner: str) -> None:
        await self._arun("release the lease of", tenant, _release_lease, tenant, owner)

    async def aclose(self) -> None:
        await self._engines.adispose()

    # -- one transaction per call ---------------------------------------------------------

    def _run(
        self,
        action: str,
        tenant: str | None,
        operation: Callable[..., T],
        *args: Any,
        conflict: T | None = None,
    ) -> T:
        try:
            with self._engines.sync().begin() as connection:
                return operation(connection, *args)
        except sa.exc.IntegrityError as exc:
            if conflict is not None:
                return conflict
            error = _store_error(action, tenant, exc)
        except _FAILURES as exc:
            error = _store_error(action, tenant, exc)
        # Raised here, outside the except blocks, so the driver's exception (which may quote
        # the statement's parameters: tokens) is not even kept as __context__.
        raise error

    async def _arun(
        self,
        action: str,
        tenant: str | None,
        operation: Callable[..., T],
        *args: Any,
        conflict: T | None = None,
    ) -> T:
        engine = self._engines.for_running_loop()
        if engine is None:
            call = functools.partial(self._run, action, tenant, operation, *args, conflict=conflict)
            return await anyio.to_thread.run_sync(call)
        try:
            async with engine.begin() as connection:
                return await connection.run_sync(operation, *args)
        except sa.exc.IntegrityError as exc:
            if conflict is not None:
                return conflict
            error = _store_error(action, tenant, exc)
        except _FAILURES as exc:
            error = _store_error(action, tenant, exc)
        raise error


def _store_error(action: str, tenant: str | None, exc: BaseException) -> StoreError:
    """Name what failed by class and code only: driver messages can quote parameters."""
    described = type(exc).__name__
    orig = getattr(exc, "orig", None)
    if orig is not None:
        described += f" ({type(orig).__module__}.{type(orig).__name__}{_error_code(orig)})"
    where = f" tenant {tenant!r}" if tenant is not None else ""
    message = f"could not {action}{where}: {described}"
    if _missing_table(orig):
        message += "; has the table been created? run jwt_outbound.migrate(url)"
    return StoreError(message, tenant=tenant)


def _error_code(orig: BaseException) -> str:
    code = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
    if code is None and orig.args and isinstance(orig.args[0], int):
        code = orig.args[0]  # MySQL error number
    return f" {code}" if code else ""


def _missing_table(orig: BaseException | None) -> bool:
    if orig is None:
        return False
    if getattr(orig, "sqlstate", None) == "42P01" or (orig.args and orig.args[0] == 1146):
        return True
    # SQLite's message names only the table: no parameter can be in it.
    return type(orig).__module__.startswith("sqlite3") and "no such table" in str(orig)


# -- the statements: each runs in the caller's transaction, on a blocking Connection ---------
# (an async connection runs them through ``run_sync``, so both flavours share them.)

_columns = (
    tokens.c.tenant,
    tokens.c.token,
    tokens.c.token_exp,
    tokens.c.refresh_token,
    tokens.c.refresh_token_exp,
    tokens.c.date,
    tokens.c.extra,
    tokens.c.version,
)


def _state(row: Row[Unpack[tuple[Any, ...]]], cipher: Cipher) -> TokenState:
    tenant = row.tenant
    return TokenState(
        tenant=tenant,
        token=cipher.open(row.token, tenant),
        token_exp=row.token_exp,
        refresh_token=None if row.refresh_token is None else cipher.open(row.refresh_token, tenant),
        refresh_token_exp=row.refresh_token_exp,
        date=row.date,
        extra=MappingProxyType(json.loads(cipher.open(row.extra, tenant))),
        version=row.version,
    )


def _values(state: TokenState, cipher: Cipher) -> dict[str, Any]:
    try:
        extra = json.dumps(dict(state.extra), separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError):
        extra = None
    if extra is None:  # raised out here: the TypeError's message shows a value
        raise StoreError(
            f"could not save tenant {state.tenant!r}: TokenState.extra must be JSON-serializable",
            tenant=state.tenant,
        )
    return {
        "token": cipher.seal(state.token),
        "token_exp": state.token_exp,
        "refresh_token": None if state.refresh_token is None else cipher.seal(state.refresh_token),
        "refresh_token_exp": state.refresh_token_exp,
        "date": state.date,
        "extra": cipher.seal(extra),
        "version": state.version,
        "updated_at": utc_now(),
    }


def _get(connection: Connection, tenant: str, cipher: Cipher) -> TokenState | None:
    row = connection.execute(sa.select(*_columns).where(tokens.c.tenant == tenant)).first()
    return None if row is None else _state(row, cipher)


def _insert(connection: Connection, state: TokenState, cipher: Cipher) -> bool:
    values = _values(state, cipher)
    connection.execute(tokens.insert().values(tenant=state.tenant, created_at=utc_now(), **values))
    return True


def _update(
    connection: Connection, state: TokenState, expected_version: int, cipher: Cipher
) -> bool:
    statement = (
        tokens.update()
        .where(tokens.c.tenant == state.tenant, tokens.c.version == expected_version)
        .values(lease_owner=None, lease_until=None, **_values(state, cipher))
    )
    return connection.execute(statement).rowcount == 1


def _delete(connection: Connection, tenant: str, expected_version: int | None) -> bool:
    statement = tokens.delete().where(tokens.c.tenant == tenant)
    if expected_version is not None:
        statement = statement.where(tokens.c.version == expected_version)
    return connection.execute(statement).rowcount == 1


def _states(connection: Connection, cipher: Cipher) -> list[TokenState]:
    # Sorted here, not by ORDER BY: database collations disagree on the order of strings.
    states = [_state(row, cipher) for row in connection.execute(sa.select(*_columns))]
    return sorted(states, key=lambda state: state.tenant)


def _reseal(connection: Connection, cipher: Cipher) -> int:
    changed = 0
    for row in connection.execute(sa.select(*_columns)).all():
        secrets = {"token": row.token, "refresh_token": row.refresh_token, "extra": row.extra}
        if not any(value is not None and cipher.stale(value) for value in secrets.values()):
            continue
        resealed = {
            name: None if value is None else cipher.seal(cipher.open(value, row.tenant))
            for name, value in secrets.items()
        }
        statement = (
            tokens.update()
            .where(tokens.c.tenant == row.tenant, tokens.c.version == row.version)
            .values(**resealed)
        )
        changed += connection.execute(statement).rowcount
    return changed


def _acquire_lease(
    connection: Connection, tenant: str, version: int, owner: str, seconds: float
) -> bool:
    statement = (
        tokens.update()
        .where(
            tokens.c.tenant == tenant,
            tokens.c.version == version,
            sa.or_(tokens.c.lease_until.is_(None), tokens.c.lease_until < db_epoch()),
        )
        .values(lease_owner=owner, lease_until=db_epoch() + float(seconds))
    )
    return connection.execute(statement).rowcount == 1


def _release_lease(connection: Connection, tenant: str, owner: str) -> None:
    connection.execute(
        tokens.update()
        .where(tokens.c.tenant == tenant, tokens.c.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )
