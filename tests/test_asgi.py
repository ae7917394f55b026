"""OutboundMiddleware under Starlette and FastAPI: test clients and a real uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio
import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from jwt_outbound import (
    AsyncTokenManager,
    CredentialsExpiredError,
    CredentialsExpiredEvent,
    JWTConfig,
    LoginEvent,
    MemoryTokenStore,
    OutboundAsyncClient,
    OutboundMiddleware,
    exception_handlers,
    outbound_client,
    resolvers,
)

from .issuer import PASSWORD, Issuer, serve

pytestmark = pytest.mark.anyio


def provider(tenant: str) -> dict[str, str]:
    return {"username": tenant, "password": PASSWORD}


async def whoami(request: Request) -> JSONResponse:
    response = await request.state.outbound.get("/api/whoami")
    return JSONResponse(response.json(), status_code=response.status_code)


async def public(request: Request) -> JSONResponse:
    return JSONResponse((await request.state.outbound.get("/public")).json())


async def untouched(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def jwt_state(request: Request) -> JSONResponse:
    client = request.state.outbound
    return JSONResponse(
        {"tenant": client.jwt.tenant, "authenticated": await client.jwt.is_authenticated()}
    )


async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    response = await websocket.state.outbound.get("/api/whoami")
    await websocket.send_json(response.json())
    await websocket.close()


def starlette_app(
    manager: AsyncTokenManager, base_url: str, resolver: Callable[..., Any] | None = None
) -> Starlette:
    return Starlette(
        routes=[
            Route("/whoami", whoami),
            Route("/public", public),
            Route("/untouched", untouched),
            Route("/jwt", jwt_state),
            Route("/t/{tenant}/whoami", whoami),
            WebSocketRoute("/ws", ws),
        ],
        middleware=[
            Middleware(
                OutboundMiddleware,
                manager=manager,
                tenant_resolver=resolver or resolvers.from_header("X-Tenant-ID"),
                base_url=base_url,
            )
        ],
        exception_handlers=exception_handlers(),
    )


@pytest.fixture
async def manager(config: JWTConfig) -> AsyncIterator[AsyncTokenManager]:
    async with AsyncTokenManager(
        config, credentials_provider=provider, store=MemoryTokenStore()
    ) as manager:
        yield manager


def inbound(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")


async def test_handler_finds_a_client_for_its_tenant(
    manager: AsyncTokenManager, base_url: str, issuer: Issuer
) -> None:
    async with inbound(starlette_app(manager, base_url)) as client:
        response = await client.get("/whoami", headers={"X-Tenant-ID": "acme"})

    assert response.json()["sub"] == "acme"
    assert issuer.login_calls == 1


async def test_200_concurrent_requests_across_20_tenants_stay_isolated(
    manager: AsyncTokenManager, base_url: str, issuer: Issuer
) -> None:
    tenants = [f"t{i:02d}" for i in range(20)]
    wrong: list[tuple[str, Any]] = []
    async with inbound(starlette_app(manager, base_url)) as client:

        async def call(tenant: str) -> None:
            body = (await client.get("/whoami", headers={"X-Tenant-ID": tenant})).json()
            if body.get("sub") != tenant:
                wrong.append((tenant, body))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                for tenant in tenants:
                    tg.start_soon(call, tenant)

    assert wrong == []
    assert sorted(sub for sub, _ in issuer.seen_tokens) == sorted(tenants * 10)
    assert issuer.login_calls == 20


async def test_client_is_built_only_when_used(manager: AsyncTokenManager, base_url: str) -> None:
    resolved: list[str] = []

    def resolver(scope: Any) -> str:
        resolved.append(scope["path"])
        return "acme"

    async with inbound(starlette_app(manager, base_url, resolver)) as client:
        await client.get("/untouched")
        await client.get("/public")

    assert resolved == ["/public"]


async def test_request_without_tenant_sends_without_token(
    manager: AsyncTokenManager, base_url: str, issuer: Issuer
) -> None:
    async with inbound(starlette_app(manager, base_url)) as client:
        response = await client.get("/public")

    assert response.json() == {"authorization": None}
    assert issuer.login_calls == 0


async def test_path_parameter_resolver_sees_the_routed_tenant(
    manager: AsyncTokenManager, base_url: str
) -> None:
    app = starlette_app(manager, base_url, resolvers.from_path_param("tenant"))
    async with inbound(app) as client:
        response = await client.get("/t/globex/whoami")

    assert response.json()["sub"] == "globex"


async def test_client_exposes_the_tenants_jwt(manager: AsyncTokenManager, base_url: str) -> None:
    await manager.login("acme", provider("acme"))
    async with inbound(starlette_app(manager, base_url)) as client:
        response = await client.get("/jwt", headers={"X-Tenant-ID": "acme"})

    assert response.json() == {"tenant": "acme", "authenticated": True}


@pytest.mark.parametrize(
    ("setup", "tenant", "status", "error"),
    [
        ("expired", "acme", 502, "outbound_credentials_expired"),
        ("down", "acme", 503, "outbound_auth_unavailable"),
        ("none", "bad tenant!", 400, "invalid_tenant"),
    ],
)
async def test_outbound_failures_become_json_errors(
    config: JWTConfig,
    base_url: str,
    issuer: Issuer,
    setup: str,
    tenant: str,
    status: int,
    error: str,
) -> None:
    async with AsyncTokenManager(config, store=MemoryTokenStore()) as manager:
        expired: list[CredentialsExpiredEvent] = []

        @manager.on_expired
        async def record(event: CredentialsExpiredEvent) -> None:
            expired.append(event)

        if setup != "none":
            issuer.token_ttl = -10
            await manager.login("acme", provider("acme"))
        if setup == "expired":
            issuer.refresh_ttl = -10
            await manager.refresh("acme")  # both held tokens are now expired
        issuer.token_ttl = 300
        if setup == "down":
            issuer.failure = 503
        async with inbound(starlette_app(manager, base_url)) as client:
            response = await client.get("/whoami", headers={"X-Tenant-ID": tenant})

    assert response.status_code == status
    assert response.json()["error"] == error
    assert issuer.api_calls == 0
    if setup == "expired":  # the app's hook saw the outbound request it stopped
        assert len(expired) == 1
        assert expired[0].tenant == "acme"
        assert expired[0].request is not None
        assert expired[0].request.url.path == "/api/whoami"
        assert isinstance(expired[0].error, CredentialsExpiredError)
    else:
        assert expired == []


async def test_fastapi_dependency_and_add_middleware(
    manager: AsyncTokenManager, base_url: str
) -> None:
    app = FastAPI(exception_handlers=exception_handlers())
    app.add_middleware(
        OutboundMiddleware,
        manager=manager,
        tenant_resolver=resolvers.from_subdomain("app.test"),
        base_url=base_url,
    )

    @app.get("/whoami")
    async def route(client: Annotated[OutboundAsyncClient, Depends(outbound_client)]) -> Any:
        return (await client.get("/api/whoami")).json()

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://initech.app.test"
    ) as client:
        response = await client.get("/whoami")

    assert response.json()["sub"] == "initech"


async def run_lifespan(app: Any, body: Callable[[], Any]) -> list[str]:
    """Drive the ASGI lifespan protocol around ``body``; return what the app sent."""
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []
    started, stopping = anyio.Event(), anyio.Event()

    async def receive() -> dict[str, str]:
        if len(incoming) == 1:
            await stopping.wait()
        return incoming.pop(0)

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            started.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(
            app, {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send
        )
        await started.wait()
        await body()
        stopping.set()
    return sent


async def call_websocket(app: Any, tenant: str) -> list[dict[str, Any]]:
    """One websocket connection straight through the ASGI app."""
    incoming = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "headers": [(b"x-tenant-id", tenant.encode())],
        "scheme": "ws",
        "server": ("app", 80),
        "client": ("127.0.0.1", 1),
        "subprotocols": [],
        "state": {},
    }
    await app(scope, receive, send)
    return sent


async def test_lifespan_closes_the_shared_pool_and_hooks_fire(
    config: JWTConfig, base_url: str, issuer: Issuer
) -> None:
    manager = AsyncTokenManager(config, credentials_provider=provider, store=MemoryTokenStore())
    logins: list[LoginEvent] = []
    manager.on_login(logins.append)
    app = starlette_app(manager, base_url)
    frames: list[dict[str, Any]] = []

    async def serve_some() -> None:
        async with inbound(app) as client:
            assert (await client.get("/whoami", headers={"X-Tenant-ID": "acme"})).json()[
                "sub"
            ] == "acme"
        frames.extend(await call_websocket(app, "acme"))
        assert not manager._token_client.is_closed

    sent = await run_lifespan(app, serve_some)

    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert manager._token_client.is_closed
    assert [f["type"] for f in frames] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert '"sub":"acme"' in frames[1]["text"]
    assert len(logins) == 1
    assert logins[0].tenant == "acme"
    assert logins[0].action == "login"


def test_under_a_real_uvicorn_server(config: JWTConfig, base_url: str, issuer: Issuer) -> None:
    manager = AsyncTokenManager(config, credentials_provider=provider, store=MemoryTokenStore())
    app = starlette_app(manager, base_url)
    with serve(app, lifespan="on") as app_url, httpx.Client(base_url=app_url) as client:
        subs = [
            client.get("/whoami", headers={"X-Tenant-ID": t}).json()["sub"]
            for t in ("a1", "b2", "a1")
        ]

    assert subs == ["a1", "b2", "a1"]
    assert manager._token_client.is_closed  # uvicorn's shutdown closed the pool
    assert issuer.login_calls == 2
