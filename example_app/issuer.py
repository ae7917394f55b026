"""The token issuer: ``POST /auth`` logs a tenant's service account in, ``POST /auth/refresh``
rotates refresh tokens (single use). Tokens live 60 s so that refreshes are easy to watch."""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SIGNING_KEY = secrets.token_hex(32)  # new on every start: the downstream API shares this module
ACCOUNTS = {"acme": "acme-secret", "globex": "globex-secret", "initech": "initech-secret"}
TOKEN_TTL, REFRESH_TTL = 90, 3600
_used: set[str] = set()


def _pair(tenant: str) -> dict[str, str]:
    now = int(time.time())

    def sign(kind: str, ttl: int) -> str:
        claims = {
            "sub": tenant,
            "typ": kind,
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, SIGNING_KEY, algorithm="HS256")

    return {"token": sign("access", TOKEN_TTL), "refresh_token": sign("refresh", REFRESH_TTL)}


async def login(request: Request) -> JSONResponse:
    body: Any = await request.json()
    tenant = body.get("username") if isinstance(body, dict) else None
    if tenant not in ACCOUNTS or body.get("password") != ACCOUNTS[tenant]:
        return JSONResponse({"error": "invalid_grant"}, status_code=401)
    return JSONResponse(_pair(tenant))


async def refresh(request: Request) -> JSONResponse:
    body: Any = await request.json()
    try:
        claims = jwt.decode(str(body.get("refresh_token")), SIGNING_KEY, algorithms=["HS256"])
    except (jwt.PyJWTError, AttributeError):
        return JSONResponse({"error": "invalid_grant"}, status_code=400)
    if claims.get("typ") != "refresh" or claims["jti"] in _used:
        return JSONResponse({"error": "invalid_grant"}, status_code=400)
    _used.add(claims["jti"])
    return JSONResponse(_pair(claims["sub"]))


app = Starlette(
    routes=[
        Route("/auth", login, methods=["POST"]),
        Route("/auth/refresh", refresh, methods=["POST"]),
    ]
)
