"""OutboundMiddleware: every ASGI request gets a tenant-bound client at ``request.state.outbound``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

# A runtime import: FastAPI reads the annotation of outbound_client to inject the request.
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse

from ._client import OutboundAsyncClient
from ._exceptions import ConfigurationError, JWTOutboundError, error_response

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ._async_manager import AsyncTokenManager
    from .resolvers import TenantResolver

__all__ = ["OutboundMiddleware", "exception_handlers", "outbound_client"]

logger = logging.getLogger("jwt_outbound")


class OutboundMiddleware:
    """Pure ASGI middleware.

    For each ``http`` and ``websocket`` connection it puts an ``OutboundAsyncClient`` at
    ``scope["state"]["outbound"]`` (``request.state.outbound``). The client is built on first
    use, for the tenant ``tenant_resolver(scope)`` names then (so route path parameters are
    available); with no tenant it sends requests without a token. All clients share the
    manager's connection pool, which is closed when the app shuts down (``close_manager``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        manager: AsyncTokenManager,
        tenant_resolver: TenantResolver,
        base_url: str = "",
        client_options: Mapping[str, Any] | None = None,
        close_manager: bool = True,
    ) -> None:
        if not callable(tenant_resolver):
            raise ConfigurationError("tenant_resolver must be a callable taking the ASGI scope")
        self.app = app
        self.manager = manager
        self.tenant_resolver = tenant_resolver
        self.close_manager = close_manager
        self._options = {**(client_options or {}), "base_url": base_url}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._closing_on_shutdown(send))
            return
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        resolver = self.tenant_resolver
        scope.setdefault("state", {})["outbound"] = self.manager._deferred_client(
            lambda: resolver(scope), self._options
        )
        await self.app(scope, receive, send)

    def _closing_on_shutdown(self, send: Send) -> Send:
        if not self.close_manager:
            return send

        async def send_after_closing(message: Message) -> None:
            # Close the shared pool before the server hears that shutdown is complete.
            if message["type"] == "lifespan.shutdown.complete":
                await self.manager.aclose()
            await send(message)

        return send_after_closing


def outbound_client(conn: HTTPConnection) -> OutboundAsyncClient:
    """The request's client, for FastAPI: ``client: OutboundAsyncClient = Depends(outbound_client)``."""
    client = conn.scope.get("state", {}).get("outbound")
    if not isinstance(client, OutboundAsyncClient):
        raise ConfigurationError(
            "no outbound client on this request: add OutboundMiddleware to the app"
        )
    return client


async def _json_error(request: HTTPConnection, exc: Exception) -> JSONResponse:
    assert isinstance(exc, JWTOutboundError)
    status, body = error_response(exc)
    logger.warning("jwt_outbound: %s answered %d: %s", request.url.path, status, exc)
    return JSONResponse(body, status_code=status)


def exception_handlers() -> dict[type[Exception], Callable[..., Any]]:
    """For ``Starlette(exception_handlers=...)`` / ``FastAPI(exception_handlers=...)``: outbound
    auth failures become JSON 502/503 (400 for a bad tenant id) instead of a 500."""
    return {JWTOutboundError: _json_error}
