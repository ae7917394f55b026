"""WSGIOutboundMiddleware: every WSGI request gets a client at ``environ["jwt_outbound.client"]``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._exceptions import ConfigurationError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ._sync_manager import TokenManager
    from .resolvers import TenantResolver

__all__ = ["ENVIRON_KEY", "WSGIOutboundMiddleware"]

ENVIRON_KEY = "jwt_outbound.client"


class WSGIOutboundMiddleware:
    """The WSGI twin of ``OutboundMiddleware`` for Flask, Django and other WSGI apps.

    Puts an ``OutboundClient`` (an ``httpx.Client``) bound to ``tenant_resolver(environ)``'s
    tenant at ``environ["jwt_outbound.client"]``, built on first use. Each request gets its own
    client; all share the ``TokenManager``'s pool, which is safe under threaded servers.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        manager: TokenManager,
        tenant_resolver: TenantResolver,
        base_url: str = "",
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not callable(tenant_resolver):
            raise ConfigurationError("tenant_resolver must be a callable taking the WSGI environ")
        self.app = app
        self.manager = manager
        self.tenant_resolver = tenant_resolver
        self._options = {**(client_options or {}), "base_url": base_url}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        resolver = self.tenant_resolver
        environ[ENVIRON_KEY] = self.manager._deferred_client(
            lambda: resolver(environ), self._options
        )
        return self.app(environ, start_response)
