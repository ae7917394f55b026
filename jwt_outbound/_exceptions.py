"""The error tree.

    JWTOutboundError
     ├── ConfigurationError        the configuration cannot work; the message says what to change
     ├── InvalidTenantError        a tenant id that is not a short id of safe characters
     ├── CredentialsExpiredError   no usable token and nothing can renew it; the request was not sent
     ├── TokenEndpointError        the token endpoint could not be used: down, timeout, 5xx, 429,
     │    │                        or a response that is not a token; the tenant's state is kept
     │    └── TokenRejectedError   the token endpoint refused the credentials or the refresh token
     └── StoreError                the token store failed; the tenant's state is unchanged

Every error names the tenant it concerns and never contains a token.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "CredentialsExpiredError",
    "InvalidTenantError",
    "JWTOutboundError",
    "StoreError",
    "TokenEndpointError",
    "TokenRejectedError",
    "error_response",
]


class JWTOutboundError(Exception):
    """Base class of every error raised by jwt_outbound."""

    def __init__(self, message: str, *, tenant: str | None = None) -> None:
        super().__init__(message)
        self.tenant = tenant


class ConfigurationError(JWTOutboundError):
    """The configuration cannot work; raised as early as possible."""


class InvalidTenantError(JWTOutboundError, ValueError):
    """A tenant id is empty, too long, or has characters outside ``A-Z a-z 0-9 . _ : @ + -``."""


class CredentialsExpiredError(JWTOutboundError):
    """The tenant's token expired and could not be renewed; the request was not sent."""


class TokenEndpointError(JWTOutboundError):
    """The token endpoint could not be used. The tenant's stored state is left as it was."""

    def __init__(
        self,
        message: str,
        *,
        tenant: str | None = None,
        action: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, tenant=tenant)
        self.action = action
        self.status_code = status_code


class TokenRejectedError(TokenEndpointError):
    """The token endpoint answered 4xx: bad credentials, or an invalid or revoked refresh token."""


class StoreError(JWTOutboundError):
    """The token store could not be read or written."""


def error_response(error: JWTOutboundError) -> tuple[int, dict[str, str | None]]:
    """A status code and a JSON body for an error met while serving a request.

    Upstream failures are the gateway's (502/503), a bad tenant id is the caller's (400). The body
    names the error and the tenant only: messages can name internal URLs.
    """
    if isinstance(error, InvalidTenantError):
        return 400, {"error": "invalid_tenant", "tenant": None}
    if isinstance(error, CredentialsExpiredError):
        return 502, {"error": "outbound_credentials_expired", "tenant": error.tenant}
    if isinstance(error, (TokenEndpointError, StoreError)):
        return 503, {"error": "outbound_auth_unavailable", "tenant": error.tenant}
    return 500, {"error": "outbound_misconfigured", "tenant": error.tenant}
