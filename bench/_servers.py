"""Loopback servers for the benchmarks: a protected API and token endpoints, in a subprocess."""

from __future__ import annotations

import contextlib
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
