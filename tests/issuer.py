"""A real token issuer and protected API for the tests, served by uvicorn on loopback.

Refresh tokens rotate and are single use; presenting a used one counts as reuse and revokes the
whole family (RFC 9700 section 4.14.2), as a careful authorization server does.

- ``POST|GET /auth``: ``username`` / ``password`` (JSON body, or query for GET) ->
  ``{"token", "refresh_token"}``, both JWTs with ``exp``.
- ``POST /auth/refresh``: ``{"refresh_token"}`` -> a new pair of the same family.
- ``POST /oauth/token``: RFC 6749 form grants ``password`` and ``refresh_token`` -> opaque
  ``access_token``, ``expires_in`` as a string, ``refresh_token``.
- ``GET /api/whoami``: the bearer's ``sub``, or 401 ``invalid_token``.
- ``GET /api/echo``: the request headers. ``GET /public``: no auth needed.
- ``GET /redirect?to=URL``: a 302 to ``URL``.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

KEY = "issuer-test-signing-key-0123456789abcdef"
PASSWORD = "secret"


@dataclasses.dataclass
class Issuer:
    """Knobs and counters, read and set by tests in the same process."""

    token_ttl: float = 300
    refresh_ttl: float = 3600
    failure: int | None = None  # answer token requests with this status
    delay: float = 0.0  # seconds before answering token requests
    body: bytes | None = None  # answer token requests 200 with this body instead
    trickle: float = 0.0  # send token responses a byte every this many seconds
    rejected_tokens: set[str] = dataclasses.field(default_factory=set)  # the API answers 401
    login_calls: int = 0
    refresh_calls: int = 0
    reuse: int = 0
    api_calls: int = 0
    public_calls: int = 0
    abandoned: int = 0  # token requests whose client went away while the issuer was slow
    seen_tokens: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (sub, path)
    token_requests: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    used: set[str] = dataclasses.field(default_factory=set)
    revoked: set[str] = dataclasses.field(default_factory=set)
    opaque: dict[str, tuple[str, float, str, str]] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    generation: int = 0  # grows on reset: a slow request of an earlier test then counts nothing

    def reset(self) -> None:
        fresh = Issuer(generation=self.generation + 1)
        for field in dataclasses.fields(self):
            if field.name != "lock":
                setattr(self, field.name, getattr(fresh, field.name))

    # -- tokens ------------------------------------------------------------------------------

    def pair(self, sub: str, family: str | None = None) -> tuple[str, str]:
        now = time.time()
        family = family or secrets.token_hex(8)
        token = jwt.encode(
            {
                "sub": sub,
                "exp": int(now + self.token_ttl),
                "iat": int(now),
                "typ": "access",
                "jti": secrets.token_hex(8),
            },
            KEY,
            algorithm="HS256",
        )
        refresh = jwt.encode(
            {
                "sub": sub,
                "exp": int(now + self.refresh_ttl),
                "typ": "refresh",
                "fam": family,
                "jti": secrets.token_hex(8),
            },
            KEY,
            algorithm="HS256",
        )
        return token, refresh

    def rotate(self, refresh_token: str) -> tuple[str, str] | str:
        """A new pair for a good refresh token, or the OAuth error code."""
        try:
            claims = jwt.decode(refresh_token, KEY, algorithms=["HS256"])
        except jwt.ExpiredSignatureError:
            return "invalid_grant"
        except jwt.PyJWTError:
            return "invalid_grant"
        if claims.get("typ") != "refresh":
            return "invalid_grant"
        with self.lock:
            if claims["fam"] in self.revoked:
                return "invalid_grant"
            if claims["jti"] in self.used:
                self.reuse += 1
                self.revoked.add(claims["fam"])
                return "invalid_grant"
            self.used.add(claims["jti"])
        return self.pair(claims["sub"], claims["fam"])

    def bearer_sub(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        token = authorization[7:]
        if token in self.rejected_tokens:
            return None
        if token in self.opaque:
            sub, exp, _, _ = self.opaque[token]
            return sub if exp > time.time() else None
        try:
            claims = jwt.decode(token, KEY, algorithms=["HS256"])
        except jwt.PyJWTError:
            return None
        return claims["sub"] if claims.get("typ") == "access" else None


def build_app(issuer: Issuer) -> Starlette:
    async def gate(request: Request, body: Any) -> Response | None:
        issuer.token_requests.append(
            {
                "path": request.url.path,
                "method": request.method,
                "query": dict(request.query_params),
                "headers": dict(request.headers),
                "body": body,
            }
        )
        if issuer.delay:
            generation = issuer.generation
            await anyio.sleep(issuer.delay)
            # A client that gave up (timeout, killed) never gets a rotation: nothing is spent.
            if generation != issuer.generation or await request.is_disconnected():
                issuer.abandoned += 1
                return Response(status_code=499)
        if issuer.failure is not None:
            return JSONResponse({"error": "temporarily_unavailable"}, status_code=issuer.failure)
        if issuer.body is not None:
            return Response(issuer.body, media_type="application/json")
        return None

    async def auth(request: Request) -> Response:
        if request.method == "GET":
            creds: Any = dict(request.query_params)
        else:
            creds = await _json(request)
        if (failed := await gate(request, creds)) is not None:
            return failed
        issuer.login_calls += 1
        if (
            not isinstance(creds, dict)
            or creds.get("password") != PASSWORD
            or not creds.get("username")
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=401)
        token, refresh = issuer.pair(str(creds["username"]))
        return JSONResponse({"token": token, "refresh_token": refresh})

    async def refresh(request: Request) -> Response:
        body = await _json(request)
        if (failed := await gate(request, body)) is not None:
            return failed
        if issuer.trickle:
            return StreamingResponse(_slowly(b'{"token": "never-finished"}', issuer.trickle))
        issuer.refresh_calls += 1
        presented = body.get("refresh_token") if isinstance(body, dict) else None
        result = issuer.rotate(str(presented)) if presented else "invalid_request"
        if isinstance(result, str):
            return JSONResponse({"error": result}, status_code=400)
        return JSONResponse({"token": result[0], "refresh_token": result[1]})

    async def oauth_token(request: Request) -> Response:
        form = {k: v[0] for k, v in urllib.parse.parse_qs((await request.body()).decode()).items()}
        if (failed := await gate(request, form)) is not None:
            return failed
        grant = form.get("grant_type")
        now = time.time()
        if grant == "password":
            issuer.login_calls += 1
            if form.get("password") != PASSWORD or not form.get("username"):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            sub, family = form["username"], secrets.token_hex(8)
        elif grant == "refresh_token":
            issuer.refresh_calls += 1
            with issuer.lock:
                held = issuer.opaque.get(form.get("refresh_token", ""))
                if held is None or held[2] != "refresh" or held[3] in issuer.revoked:
                    return JSONResponse({"error": "invalid_grant"}, status_code=400)
                if form["refresh_token"] in issuer.used:
                    issuer.reuse += 1
                    issuer.revoked.add(held[3])
                    return JSONResponse({"error": "invalid_grant"}, status_code=400)
                issuer.used.add(form["refresh_token"])
            sub, family = held[0], held[3]
        else:
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        access, refresh_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        issuer.opaque[access] = (sub, now + issuer.token_ttl, "access", family)
        issuer.opaque[refresh_token] = (sub, now + issuer.refresh_ttl, "refresh", family)
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": str(int(issuer.token_ttl)),
                "refresh_token": refresh_token,
                "scope": "api",
            }
        )

    async def whoami(request: Request) -> Response:
        issuer.api_calls += 1
        sub = issuer.bearer_sub(request.headers.get("authorization"))
        if sub is None:
            return JSONResponse(
                {"error": "invalid_token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        issuer.seen_tokens.append((sub, request.url.path))
        return JSONResponse({"sub": sub, "tenant": request.query_params.get("tenant")})

    async def echo(request: Request) -> Response:
        issuer.api_calls += 1
        return JSONResponse(
            {"headers": dict(request.headers), "body": (await request.body()).decode()}
        )

    async def redirect(request: Request) -> Response:
        return Response(status_code=302, headers={"Location": request.query_params["to"]})

    async def public(request: Request) -> Response:
        issuer.public_calls += 1
        return JSONResponse({"authorization": request.headers.get("authorization")})

    return Starlette(
        routes=[
            Route("/auth", auth, methods=["GET", "POST"]),
            Route("/auth/refresh", refresh, methods=["POST"]),
            Route("/oauth/token", oauth_token, methods=["POST"]),
            Route("/api/whoami", whoami, methods=["GET", "POST"]),
            Route("/api/echo", echo, methods=["GET", "POST"]),
            Route("/public", public),
            Route("/redirect", redirect),
        ]
    )


async def _slowly(body: bytes, pause: float) -> AsyncIterator[bytes]:
    for index in range(len(body)):
        await anyio.sleep(pause)
        yield body[index : index + 1]


async def _json(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


@contextmanager
def serve(app: Any, lifespan: str = "off") -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port in a thread; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan=lifespan, ws="none", http="h11")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
