"""The downstream API: each tenant's orders, for that tenant's bearer token only."""

from __future__ import annotations

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import issuer

ORDERS = {
    "acme": [{"id": 1, "item": "anvil"}, {"id": 2, "item": "rocket skates"}],
    "globex": [{"id": 7, "item": "hammock"}],
    "initech": [{"id": 9, "item": "stapler"}],
}


async def orders(request: Request) -> JSONResponse:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        claims = (
            jwt.decode(token, issuer.SIGNING_KEY, algorithms=["HS256"])
            if scheme == "Bearer"
            else None
        )
    except jwt.PyJWTError:
        claims = None
    if not claims or claims.get("typ") != "access":
        return JSONResponse(
            {"error": "invalid_token"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return JSONResponse({"tenant": claims["sub"], "orders": ORDERS.get(claims["sub"], [])})


app = Starlette(routes=[Route("/orders", orders)])
