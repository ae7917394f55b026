"""Per-tenant JWTs for outbound httpx calls, shared by every worker of a service."""

from . import resolvers
from ._asgi import OutboundMiddleware, exception_handlers, outbound_client
from ._async_manager import AsyncTokenManager
from ._auth import TenantAuth
from ._client import AsyncTenantJWT, OutboundAsyncClient, OutboundClient, TenantJWT
from ._config import Endpoint, JWTConfig, TenantView
from ._events import CredentialsExpiredEvent, LoginEvent, LogoutEvent
from ._exceptions import (
    ConfigurationError,
    CredentialsExpiredError,
    InvalidTenantError,
    JWTOutboundError,
    StoreError,
    TokenEndpointError,
    TokenRejectedError,
    error_response,
)
from ._migrate import amigrate, current_revision, downgrade, exclude_jwt_outbound_tables, migrate
from ._state import TokenState
from ._store import MemoryTokenStore, SQLTokenStore, TokenStore, default_database_url
from ._sync_manager import TokenManager
from ._wsgi import WSGIOutboundMiddleware

__version__ = "0.1.0"

__all__ = [
    "AsyncTenantJWT",
    "AsyncTokenManager",
    "ConfigurationError",
    "CredentialsExpiredError",
    "CredentialsExpiredEvent",
    "Endpoint",
    "InvalidTenantError",
    "JWTConfig",
    "JWTOutboundError",
    "LoginEvent",
    "LogoutEvent",
    "MemoryTokenStore",
    "OutboundAsyncClient",
    "OutboundClient",
    "OutboundMiddleware",
    "SQLTokenStore",
    "StoreError",
    "TenantAuth",
    "TenantJWT",
    "TenantView",
    "TokenEndpointError",
    "TokenManager",
    "TokenRejectedError",
    "TokenState",
    "TokenStore",
    "WSGIOutboundMiddleware",
    "__version__",
    "amigrate",
    "current_revision",
    "default_database_url",
    "downgrade",
    "error_response",
    "exception_handlers",
    "exclude_jwt_outbound_tables",
    "migrate",
    "outbound_client",
    "resolvers",
]
