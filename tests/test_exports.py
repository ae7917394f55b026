"""The public facade: one sorted __all__, every name importable, nothing private leaking."""

from __future__ import annotations

import jwt_outbound


def test_all_is_sorted_and_complete() -> None:
    names = jwt_outbound.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(jwt_outbound, name), name
    public = {n for n in vars(jwt_outbound) if not n.startswith("_")}
    assert public <= set(names)


def test_contract_names_are_exported() -> None:
    contract = {
        "JWTConfig",
        "Endpoint",
        "TokenState",
        "AsyncTokenManager",
        "TokenManager",
        "MemoryTokenStore",
        "LoginEvent",
        "LogoutEvent",
        "CredentialsExpiredEvent",
        "JWTOutboundError",
        "CredentialsExpiredError",
        "TokenEndpointError",
        "ConfigurationError",
    }
    assert contract <= set(jwt_outbound.__all__)


def test_error_tree() -> None:
    from jwt_outbound import (
        ConfigurationError,
        CredentialsExpiredError,
        JWTOutboundError,
        TokenEndpointError,
        TokenRejectedError,
    )

    for cls in (ConfigurationError, CredentialsExpiredError, TokenEndpointError):
        assert issubclass(cls, JWTOutboundError)
    assert issubclass(TokenRejectedError, TokenEndpointError)
