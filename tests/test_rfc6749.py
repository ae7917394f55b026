"""An RFC 6749 token endpoint: form grants, opaque tokens, ``expires_in`` as a string."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from jwt_outbound import AsyncTokenManager, Endpoint, JWTConfig, MemoryTokenStore, TenantView

from .issuer import PASSWORD, Issuer

pytestmark = pytest.mark.anyio


def password_grant(credentials: dict[str, str], options: dict[str, Any], view: TenantView) -> None:
    options["data"] = {"grant_type": "password", **credentials}


def refresh_grant(refresh_token: str, options: dict[str, Any], view: TenantView) -> None:
    options["data"] = {"grant_type": "refresh_token", "refresh_token": refresh_token}


@pytest.fixture
def oauth_config(base_url: str) -> JWTConfig:
    return JWTConfig(
        login=Endpoint(f"{base_url}/oauth/token", configure=password_grant),
        refresh=Endpoint(f"{base_url}/oauth/token", configure=refresh_grant),
    )


async def test_opaque_token_gets_its_expiry_from_expires_in(
    make: Any, oauth_config: JWTConfig, issuer: Issuer
) -> None:
    h = make(oauth_config, clock=lambda: 1_000_000.0)
    issuer.token_ttl = 900

    state = await h.call("login", "acme", {"username": "acme", "password": PASSWORD})

    assert state.token_exp == 1_000_900  # now + int("900")
    assert state.refresh_token is not None
    assert state.refresh_token_exp is None
    assert dict(state.extra) == {"token_type": "Bearer", "scope": "api"}
    assert state.date == 1_000_000
    body = (await h.get("acme", "/api/whoami")).json()
    assert body["sub"] == "acme"


async def test_opaque_token_near_expiry_is_refreshed(
    make: Any, oauth_config: JWTConfig, issuer: Issuer
) -> None:
    h = make(oauth_config)
    issuer.token_ttl = 30  # inside the default 60 s leeway: expired for us, valid for the API
    before = await h.call("login", "acme", {"username": "acme", "password": PASSWORD})
    issuer.token_ttl = 3600

    assert (await h.get("acme", "/api/whoami")).status_code == 200

    after = await h.call("state", "acme")
    assert after.token != before.token
    assert after.refresh_token != before.refresh_token
    assert after.token_exp is not None
    assert after.token_exp > time.time() + 3000
    assert issuer.refresh_calls == 1


async def test_concurrent_opaque_refresh_is_single_flight(
    oauth_config: JWTConfig, issuer: Issuer, base_url: str
) -> None:
    async with AsyncTokenManager(oauth_config, store=MemoryTokenStore()) as manager:
        issuer.token_ttl = 30
        await manager.login("acme", {"username": "acme", "password": PASSWORD})
        issuer.token_ttl = 3600
        statuses: list[int] = []
        async with manager.client("acme", base_url=base_url) as client:

            async def call() -> None:
                statuses.append((await client.get("/api/whoami")).status_code)

            async with anyio.create_task_group() as tg:
                for _ in range(100):
                    tg.start_soon(call)

    assert statuses == [200] * 100
    assert issuer.refresh_calls == 1
    assert issuer.reuse == 0
