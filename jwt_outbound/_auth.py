"""TenantAuth: the ``httpx.Auth`` that runs the core's request workflow for one tenant."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING, Any

import httpx

from ._effects import Send, advance

if TYPE_CHECKING:
    from ._async_manager import AsyncTokenManager
    from ._origins import Origin
    from ._sync_manager import TokenManager

__all__ = ["TenantAuth"]


class TenantAuth(httpx.Auth):
    """Attaches ``tenant``'s token to requests bound for ``allowed`` origins (``None``: any).

    Renews the token first when it expired, renews once more and retries once on a ``401``
    that blames the token, and raises ``CredentialsExpiredError`` (without sending) when the
    token cannot be renewed.
    """

    def __init__(
        self,
        manager: TokenManager | AsyncTokenManager,
        tenant: str,
        allowed: frozenset[Origin] | None,
    ) -> None:
        self._manager = manager
        self._tenant = tenant
        self._allowed = allowed

    def __repr__(self) -> str:
        return f"TenantAuth(tenant={self._tenant!r})"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        manager = self._manager
        if not hasattr(manager, "_perform_sync"):
            raise RuntimeError(
                "this auth belongs to an AsyncTokenManager: use it with httpx.AsyncClient"
            )
        flow = manager._core.request(self._tenant, request, self._allowed)
        value: Any = None
        error: BaseException | None = None
        while True:
            done, effect = advance(flow, value, error)
            if done:
                return
            value, error = None, None
            if isinstance(effect, Send):
                value = yield effect.request
                continue
            try:
                value = manager._perform_sync(effect)
            except Exception as exc:
                error = exc

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        manager = self._manager
        if not hasattr(manager, "_perform_async"):
            raise RuntimeError("this auth belongs to a TokenManager: use it with httpx.Client")
        flow = manager._core.request(self._tenant, request, self._allowed)
        value: Any = None
        error: BaseException | None = None
        while True:
            done, effect = advance(flow, value, error)
            if done:
                return
            value, error = None, None
            if isinstance(effect, Send):
                value = yield effect.request
                continue
            try:
                value = await manager._perform_async(effect)
            except Exception as exc:
                error = exc
