"""Type-checked by mypy --strict in CI, never run: the public API as users write it."""

from __future__ import annotations

from typing import Any

import httpx
from typing_extensions import assert_type

from jwt_outbound import (
    AsyncTokenManager,
    CredentialsExpiredEvent,
    Endpoint,
    JWTConfig,
    JWTOutboundError,
    LoginEvent,
    LogoutEvent,
    OutboundAsyncClient,
    OutboundClient,
    SQLTokenStore,
    TenantView,
    TokenManager,
    TokenState,
    error_response,
    migrate,
    resolvers,
)


def configure(credentials: Any, options: dict[str, Any], view: TenantView) -> None:
    options["json"] = {"user": credentials, "tenant": view.tenant}


async def authenticate(request: httpx.Request, view: TenantView) -> None:
    request.headers["X-Token"] = view.token or ""


config = JWTConfig(
    login=Endpoint("https://idp.example/auth", configure=configure),
    refresh=Endpoint("https://idp.example/refresh", timeout=5),
    authenticate=authenticate,
    leeway=30,
)


async def async_use() -> None:
    async with AsyncTokenManager(config, store=SQLTokenStore("sqlite:///t.db")) as manager:

        @manager.on_login
        async def audit(event: LoginEvent) -> None:
            assert_type(event.state, TokenState)

        manager.on("jwt:logout", lambda event: None)
        manager.on(CredentialsExpiredEvent, print)
        assert_type(await manager.login("acme", {"u": "p"}), TokenState)
        assert_type(await manager.state("acme"), TokenState | None)
        assert_type(await manager.is_authenticated("acme"), bool)
        async with manager.client("acme", base_url="https://api.example") as client:
            assert_type(client, OutboundAsyncClient)
            assert_type(await client.get("/x"), httpx.Response)
            if client.jwt is not None:
                assert_type(await client.jwt.logout(), bool)
        auth: httpx.Auth = manager.auth("acme", allowed_origins=["https://api.example"])
        assert auth is not None


def sync_use() -> None:
    migrate("sqlite:///t.db")
    with TokenManager(JWTConfig(login=Endpoint("https://idp.example/auth"))) as manager:

        @manager.on_logout
        def gone(event: LogoutEvent) -> None:
            assert_type(event.tenant, str)

        assert_type(manager.refresh("acme"), TokenState)
        with manager.client("acme", base_url="https://api.example") as client:
            assert_type(client, OutboundClient)
            assert_type(client.get("/x"), httpx.Response)
    resolver = resolvers.from_header("X-Tenant-ID")
    assert_type(resolver({"headers": []}), str | None)


def handle(error: JWTOutboundError) -> dict[str, str | None]:
    status, body = error_response(error)
    assert_type(status, int)
    return body
