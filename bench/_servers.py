"""Loopback servers for the benchmarks: a protected API and token endpoints, in a subprocess.

``app`` serves bench.overhead; ``issuer_app`` is the rotating authorization server and strict API
of bench.stampede. Run each under ONE uvicorn worker: their counters live in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

KEY = "bench-signing-key-0123456789abcdef0123"
PASSWORD = "bench"


def pair(sub: str, ttl: int) -> dict[str, str]:
    now = int(time.time())
    sign = lambda typ, t: jwt.encode(  # noqa: E731
        {"sub": sub, "typ": typ, "exp": now + t, "jti": secrets.token_hex(8)},
        KEY,
        algorithm="HS256",
    )
    return {"token": sign("access", ttl), "refresh_token": sign("refresh", 86400)}


async def api(request: Request) -> Response:
    if not request.headers.get("authorization"):
        return JSONResponse({"error": "invalid_token"}, status_code=401)
    return JSONResponse({"ok": True})


async def auth(request: Request) -> Response:
    body = await request.json()
    return JSONResponse(pair(body["username"], int(request.query_params.get("ttl", 3600))))


async def oauth_token(request: Request) -> Response:
    form = urllib.parse.parse_qs((await request.body()).decode())
    return JSONResponse(
        {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": secrets.token_urlsafe(24),
            "grant": form.get("grant_type", [""])[0],
        }
    )


app = Starlette(
    routes=[
        Route("/api", api),
        Route("/auth", auth, methods=["POST"]),
        Route("/oauth/token", oauth_token, methods=["POST"]),
    ]
)


# -- issuer_app: one token endpoint with single-use refresh tokens, and an API that checks them --


class Issuer:
    """What the issuer has handed out, and what its token endpoint and API have seen."""

    def __init__(self) -> None:
        self.access_ttl = 3600  # seconds; negative issues tokens that are already expired
        self.latency = 0.0  # seconds before the token endpoint answers
        self.access: dict[str, float] = {}  # access token -> exp
        self.live_refresh: set[str] = set()
        self.used_refresh: set[str] = set()
        self.reset()

    def reset(self) -> None:
        self.calls: list[dict[str, object]] = []  # one per token-endpoint request
        self.refresh_reuse = 0
        self.api_ok = 0
        self.api_rejected = 0

    def issue(self, sub: str) -> tuple[str, str, int]:
        now = time.time()
        access = jwt.encode(
            {
                "sub": sub,
                "typ": "access",
                "exp": int(now) + self.access_ttl,
                "jti": secrets.token_hex(8),
            },
            KEY,
            algorithm="HS256",
        )
        refresh = jwt.encode(
            {"sub": sub, "typ": "refresh", "exp": int(now) + 86400, "jti": secrets.token_hex(8)},
            KEY,
            algorithm="HS256",
        )
        self.access[access] = int(now) + self.access_ttl
        self.live_refresh.add(refresh)
        return access, refresh, self.access_ttl


issuer = Issuer()


async def issuer_token(request: Request) -> Response:
    """``POST /token``. A JSON body (jwt_outbound's default requests: ``{"username",
    "password"}`` or ``{"refresh_token"}``) gets ``{"token", "refresh_token"}`` JWTs; a form body
    (RFC 6749: ``grant_type=password`` or ``refresh_token``) gets ``{"access_token",
    "expires_in", "refresh_token"}``. A refresh token works once: presented again, it is
    counted as reuse and refused with ``invalid_grant``."""
    received = time.time()
    raw = await request.body()
    as_json = request.headers.get("content-type", "").startswith("application/json")
    if as_json:
        body = json.loads(raw or b"{}")
        grant = "refresh_token" if "refresh_token" in body else "password"
    else:
        body = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
        grant = body.get("grant_type", "")
    await asyncio.sleep(issuer.latency)
    outcome, sub = "ok", str(body.get("username") or "bench")
    if grant == "refresh_token":
        presented = str(body.get("refresh_token", ""))
        if presented in issuer.live_refresh:
            issuer.live_refresh.discard(presented)
            issuer.used_refresh.add(presented)
        elif presented in issuer.used_refresh:
            issuer.refresh_reuse += 1
            outcome = "reuse"
        else:
            outcome = "unknown"
    elif grant == "password":
        if body.get("password") != PASSWORD:
            outcome = "bad password"
    else:
        outcome = "unsupported grant"
    issuer.calls.append(
        {"received": received, "answered": time.time(), "grant": grant, "outcome": outcome}
    )
    if outcome != "ok":
        error = "unsupported_grant_type" if outcome == "unsupported grant" else "invalid_grant"
        return JSONResponse({"error": error}, status_code=400)
    access, refresh, ttl = issuer.issue(sub)
    if as_json:
        return JSONResponse({"token": access, "refresh_token": refresh})
    return JSONResponse(
        {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ttl,
            "refresh_token": refresh,
        }
    )


async def issuer_api(request: Request) -> Response:
    """``GET /api``: 200 only for an access token this issuer handed out and that has not expired."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    exp = issuer.access.get(token) if scheme.lower() == "bearer" else None
    if exp is None or exp <= time.time():
        issuer.api_rejected += 1
        return JSONResponse(
            {"error": "invalid_token"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    issuer.api_ok += 1
    return JSONResponse({"ok": True})


async def issuer_health(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def issuer_stats(request: Request) -> Response:
    grants: dict[str, int] = {}
    for call in issuer.calls:
        grants[str(call["grant"])] = grants.get(str(call["grant"]), 0) + 1
    return JSONResponse(
        {
            "token_calls": len(issuer.calls),
            "grants": grants,
            "refresh_reuse": issuer.refresh_reuse,
            "api_ok": issuer.api_ok,
            "api_rejected": issuer.api_rejected,
            "calls": issuer.calls,
            "access_ttl": issuer.access_ttl,
            "latency": issuer.latency,
        }
    )


async def issuer_reset(request: Request) -> Response:
    """``POST /reset`` zeroes the counters; an optional JSON body sets ``access_ttl`` (seconds,
    negative for tokens born expired) and ``latency`` (seconds) of later token responses.
    Tokens already issued stay valid."""
    body = json.loads(await request.body() or b"{}")
    if "access_ttl" in body:
        issuer.access_ttl = int(body["access_ttl"])
    if "latency" in body:
        issuer.latency = float(body["latency"])
    issuer.reset()
    return JSONResponse({"access_ttl": issuer.access_ttl, "latency": issuer.latency})


issuer_app = Starlette(
    routes=[
        Route("/token", issuer_token, methods=["POST"]),
        Route("/api", issuer_api),
        Route("/health", issuer_health),
        Route("/stats", issuer_stats),
        Route("/reset", issuer_reset, methods=["POST"]),
    ]
)


@contextlib.contextmanager
def server(target: str = "bench._servers:app", workers: int = 1) -> Iterator[str]:
    """Run ``target`` under uvicorn in a subprocess on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            target,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--workers",
            str(workers),
            "--no-access-log",
        ],
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("benchmark server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
