"""Time per outbound call through jwt_outbound, against plain httpx and the peers, in one run.

    python -m bench.overhead [--calls 2000] [--rounds 5]

Every variant calls the same loopback API with a valid token already held, so what differs is
the auth machinery on the request path. "through middleware" drives an inbound ASGI request
whose handler makes the call via ``request.state.outbound``; its baseline is the same app
calling through one shared plain client with a static header on the same pool.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import timeit
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jwt_outbound import (
    AsyncTokenManager,
    Endpoint,
    JWTConfig,
    MemoryTokenStore,
    OutboundMiddleware,
)

from ._servers import PASSWORD, pair, server

Call = Callable[[], Awaitable[Any]]


def asgi_caller(app: Any) -> Call:
    """One inbound GET straight into ``app`` (no server), returning when the response is sent."""
    scope_base = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"x-tenant-id", b"bench")],
        "server": ("app", 80),
        "client": ("127.0.0.1", 1),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"inbound request failed: {message['status']}")

    async def call() -> None:
        await app({**scope_base, "state": {}}, receive, send)

    return call


async def measure(variants: dict[str, Call], calls: int, rounds: int) -> dict[str, float]:
    """Median over rounds of the mean microseconds per call. Variants take turns call by call
    (starting with a different one each time), so the machine's drift is shared by all."""
    for call in variants.values():  # warm up: connections, tokens, caches
        for _ in range(50):
            await call()
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        spent = dict.fromkeys(names, 0.0)
        for i in range(calls):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                await variants[name]()
                spent[name] += time.perf_counter() - start
        for name in names:
            samples[name].append(spent[name] / calls * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def mock_api(request: httpx.Request) -> httpx.Response:
    """The loopback API's answers, without the network: what is left is client-side cost."""
    if request.url.path == "/auth":
        return httpx.Response(200, json=pair("bench", 3600))
    if request.url.path == "/oauth/token":
        return httpx.Response(
            200, json={"access_token": "opaque", "token_type": "Bearer", "expires_in": 3600}
        )
    return httpx.Response(200, json={"ok": True})


async def compare(
    url: str, transport: httpx.AsyncBaseTransport, calls: int, rounds: int
) -> dict[str, float]:
    from authlib.integrations.httpx_client import AsyncOAuth2Client
    from httpx_auth import OAuth2ResourceOwnerPasswordCredentials

    config = JWTConfig(login=Endpoint(f"{url}/auth"), refresh=Endpoint(f"{url}/auth"))
    manager = AsyncTokenManager(
        config,
        store=MemoryTokenStore(),
        transport=transport,
        credentials_provider=lambda tenant: {"username": tenant, "password": PASSWORD},
    )
    state = await manager.login("bench", {"username": "bench", "password": PASSWORD})
    plain = httpx.AsyncClient(
        base_url=url, transport=manager._shared, headers={"Authorization": f"Bearer {state.token}"}
    )
    shared = manager.client("bench", base_url=url)

    async def through_middleware(request: Request) -> Response:
        await request.state.outbound.get("/api")
        return Response(b"")

    async def through_plain(request: Request) -> Response:
        await plain.get("/api")
        return Response(b"")

    app_jwt = Starlette(
        routes=[Route("/", through_middleware)],
        middleware=[
            Middleware(
                OutboundMiddleware, manager=manager, tenant_resolver=lambda s: "bench", base_url=url
            )
        ],
    )
    app_plain = Starlette(routes=[Route("/", through_plain)])
    # Each peer as its users would hold it: one client per process, on its own pool.
    mock = isinstance(transport, httpx.MockTransport)
    peer_transport = transport if mock else httpx.AsyncHTTPTransport()
    authlib = AsyncOAuth2Client(
        token={
            "access_token": state.token,
            "token_type": "Bearer",
            "expires_at": int(time.time()) + 3600,
        },
        transport=peer_transport,
    )
    httpx_auth_client = httpx.AsyncClient(
        transport=peer_transport,
        auth=OAuth2ResourceOwnerPasswordCredentials(
            f"{url}/oauth/token",
            username="bench",
            password=PASSWORD,
            # httpx-auth fetches tokens with a sync client of its own
            client=httpx.Client(transport=httpx.MockTransport(mock_api)) if mock else None,
        ),
    )

    async def per_request_client() -> None:
        async with manager.client("bench", base_url=url) as client:
            await client.get("/api")

    variants: dict[str, Call] = {
        "plain httpx, static header": lambda: plain.get("/api"),
        "jwt_outbound, one client": lambda: shared.get("/api"),
        "jwt_outbound, client per request": per_request_client,
        "authlib AsyncOAuth2Client": lambda: authlib.get(f"{url}/api"),
        "httpx-auth OAuth2 password": lambda: httpx_auth_client.get(f"{url}/api"),
        "app: plain client": asgi_caller(app_plain),
        "app: through middleware": asgi_caller(app_jwt),
    }
    try:
        return await measure(variants, calls, rounds)
    finally:
        await authlib.aclose()
        await httpx_auth_client.aclose()
        await manager.aclose()


def report(title: str, results: dict[str, float]) -> None:
    base = results["plain httpx, static header"]
    app_base = results["app: plain client"]
    print(f"\n{title}")
    print(f"{'variant':36} {'us/call':>9} {'ratio':>7}")
    for name, value in results.items():
        ref = app_base if name.startswith("app:") else base
        print(f"{name:36} {value:9.1f} {value / ref:7.3f}")


async def run(calls: int, rounds: int) -> None:
    with server() as url:
        loopback = await compare(url, httpx.AsyncHTTPTransport(), calls, rounds)
    in_process = await compare("http://api.bench", httpx.MockTransport(mock_api), calls * 5, rounds)

    manager = AsyncTokenManager(
        JWTConfig(login=Endpoint("http://api.bench/auth")), store=MemoryTokenStore()
    )
    build = (
        timeit.timeit(lambda: manager.client("bench", base_url="http://api.bench"), number=20000)
        / 20000
        * 1e6
    )
    deferred = (
        timeit.timeit(
            lambda: manager._deferred_client(lambda: "bench", {"base_url": "http://api.bench"}),
            number=20000,
        )
        / 20000
        * 1e6
    )
    plain_new = timeit.timeit(lambda: httpx.AsyncClient(), number=50) / 50 * 1e6
    await manager.aclose()

    report(
        f"loopback API (uvicorn subprocess), {calls} calls x {rounds} rounds, median per call",
        loopback,
    )
    report(
        f"in-process API (httpx.MockTransport): client-side cost only, {calls * 5} calls x {rounds} rounds",
        in_process,
    )
    print(
        f"\nper-request client: {build:.1f} us built, {deferred:.2f} us deferred until used "
        f"(a new httpx.AsyncClient() with its own pool: {plain_new:.0f} us)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.rounds))


if __name__ == "__main__":
    main()
