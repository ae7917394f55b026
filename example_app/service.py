"""The multi-tenant service. The tenant is the first path segment; every handler calls the
downstream API through ``request.state.outbound`` with that tenant's token."""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from jwt_outbound import (
    AsyncTokenManager,
    Endpoint,
    JWTConfig,
    LoginEvent,
    LogoutEvent,
    OutboundAsyncClient,
    OutboundMiddleware,
    exception_handlers,
    migrate,
    outbound_client,
    resolvers,
)

from . import issuer

ISSUER_URL = os.environ.get("EXAMPLE_ISSUER_URL", "http://127.0.0.1:8001")
DOWNSTREAM_URL = os.environ.get("EXAMPLE_DOWNSTREAM_URL", "http://127.0.0.1:8002")

Client = Annotated[OutboundAsyncClient, Depends(outbound_client)]


def credentials(tenant: str) -> dict[str, str] | None:
    """The service account of each tenant (a vault or settings lookup in a real service)."""
    password = issuer.ACCOUNTS.get(tenant)
    return {"username": tenant, "password": password} if password else None


def create_app(issuer_url: str = ISSUER_URL, downstream_url: str = DOWNSTREAM_URL) -> FastAPI:
    # Token state goes to the default database: the SQLite file jwt_outbound.db, or
    # $JWT_OUTBOUND_DATABASE_URL. A deployment runs this migration with `jwt-outbound migrate`.
    migrate()
    config = JWTConfig(
        login=Endpoint(f"{issuer_url}/auth"), refresh=Endpoint(f"{issuer_url}/auth/refresh")
    )
    manager = AsyncTokenManager(config, credentials_provider=credentials)
    audit: list[dict[str, Any]] = []

    @manager.on_login
    def on_login(event: LoginEvent) -> None:
        audit.append({"event": event.alias, "tenant": event.tenant, "action": event.action})

    @manager.on_logout
    def on_logout(event: LogoutEvent) -> None:
        audit.append({"event": event.alias, "tenant": event.tenant})

    app = FastAPI(title="jwt_outbound example", exception_handlers=exception_handlers())
    app.add_middleware(
        OutboundMiddleware,
        manager=manager,
        tenant_resolver=resolvers.from_path(0),
        base_url=downstream_url,
    )

    @app.get("/{tenant}/orders")
    async def orders(tenant: str, client: Client) -> Any:
        response = await client.get("/orders")
        if response.status_code != 200:  # e.g. a tenant without a service account
            return JSONResponse(response.json(), status_code=response.status_code)
        return {"via": "jwt_outbound", **response.json()}

    @app.get("/{tenant}/token")
    async def token_status(tenant: str, client: Client) -> Any:
        assert client.jwt is not None
        state = await client.jwt.state()
        if state is None:
            return {"tenant": tenant, "authenticated": False}
        return {
            "tenant": tenant,
            "authenticated": True,
            "token_exp": state.token_exp,
            "version": state.version,
        }

    @app.post("/{tenant}/logout")
    async def logout(tenant: str, client: Client) -> Any:
        assert client.jwt is not None
        return {"tenant": tenant, "logged_out": await client.jwt.logout()}

    @app.get("/audit")
    async def audit_log() -> Any:
        return audit

    return app
