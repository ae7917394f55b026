"""Per-tenant JWTs for outbound httpx calls, shared by every worker of a service."""

from ._auth import TenantAuth
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
)
from ._manager import AsyncTokenManager, TokenManager
from ._state import TokenState
from ._store import MemoryTokenStore, TokenStore

__version__ = "0.1.0"

__all__ = [
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
    "StoreError",
    "TenantAuth",
    "TenantView",
    "TokenEndpointError",
    "TokenManager",
    "TokenRejectedError",
    "TokenState",
    "TokenStore",
    "__version__",
]
