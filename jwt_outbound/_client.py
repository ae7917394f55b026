"""Tenant-bound httpx clients, built lazily for middleware, and their ``.jwt`` handle."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

if TYPE_CHECKING:
    from ._async_manager import AsyncTokenManager
    from ._state import TokenState
    from ._sync_manager import TokenManager

__all__ = [
    "AsyncBorrowedTransport",
    "AsyncTenantJWT",
    "BorrowedTransport",
    "OutboundAsyncClient",
    "OutboundClient",
    "TenantJWT",
]

C = TypeVar("C", bound="_Deferred")


class TenantJWT:
    """One tenant's side of a ``TokenManager`` (the original's ``klient.jwt``)."""

    __slots__ = ("_manager", "tenant")

    def __init__(self, manager: TokenManager, tenant: str) -> None:
        self._manager = manager
        self.tenant = tenant

    def __repr__(self) -> str:
        return f"TenantJWT(tenant={self.tenant!r})"

    def login(self, credentials: Any) -> TokenState:
        return self._manager.login(self.tenant, credentials)

    def logout(self) -> bool:
        return self._manager.logout(self.tenant)

    def refresh(self) -> TokenState:
        return self._manager.refresh(self.tenant)

    def state(self) -> TokenState | None:
        return self._manager.state(self.tenant)

    def is_authenticated(self) -> bool:
        return self._manager.is_authenticated(self.tenant)


class AsyncTenantJWT:
    """One tenant's side of an ``AsyncTokenManager`` (the original's ``klient.jwt``)."""

    __slots__ = ("_manager", "tenant")

    def __init__(self, manager: AsyncTokenManager, tenant: str) -> None:
        self._manager = manager
        self.tenant = tenant

    def __repr__(self) -> str:
        return f"AsyncTenantJWT(tenant={self.tenant!r})"

    async def login(self, credentials: Any) -> TokenState:
        return await self._manager.login(self.tenant, credentials)

    async def logout(self) -> bool:
        return await self._manager.logout(self.tenant)

    async def refresh(self) -> TokenState:
        return await self._manager.refresh(self.tenant)

    async def state(self) -> TokenState | None:
        return await self._manager.state(self.tenant)

    async def is_authenticated(self) -> bool:
        return await self._manager.is_authenticated(self.tenant)


class _Deferred:
    """Defers an httpx client's ``__init__`` to its first use.

    Middleware hands every request a client; most handlers never touch it, so building it
    (tenant resolution included) waits until an attribute the client sets in ``__init__`` is
    first read.
    """

    @classmethod
    def deferred(cls: type[C], build: Callable[[], dict[str, Any]]) -> C:
        client = cls.__new__(cls)
        client.__dict__["_deferred_build"] = build
        return client

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not set yet, i.e. before __init__ ran.
        build = self.__dict__.pop("_deferred_build", None)
        if build is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        self.__init__(**build())  # type: ignore[misc]
        return getattr(self, name)


class OutboundAsyncClient(_Deferred, httpx.AsyncClient):
    """An ``httpx.AsyncClient`` bound to one tenant; ``jwt`` is that tenant's handle (``None``
    for a client without a tenant, which sends requests without a token)."""

    def __init__(self, *, jwt: AsyncTenantJWT | None = None, **options: Any) -> None:
        self.jwt = jwt
        super().__init__(**options)


class OutboundClient(_Deferred, httpx.Client):
    """An ``httpx.Client`` bound to one tenant; ``jwt`` is that tenant's handle (``None`` for a
    client without a tenant, which sends requests without a token)."""

    def __init__(self, *, jwt: TenantJWT | None = None, **options: Any) -> None:
        self.jwt = jwt
        super().__init__(**options)


class BorrowedTransport(httpx.BaseTransport):
    """The manager's pool, lent to a per-request client: closing the client leaves it open."""

    def __init__(self, transport: httpx.BaseTransport) -> None:
        self._transport = transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._transport.handle_request(request)


class AsyncBorrowedTransport(httpx.AsyncBaseTransport):
    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)
