"""Where the token goes: allowed origins, opt-out, shared pool."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from jwt_outbound import (
    AsyncTokenManager,
    Endpoint,
    InvalidTenantError,
    JWTConfig,
    MemoryTokenStore,
    TenantView,
    TokenManager,
)

from .conftest import CREDENTIALS

pytestmark = pytest.mark.anyio


async def test_token_only_goes_to_the_base_url_origin(
    make: Any, config: JWTConfig, base_url: str
) -> None:
    h = make(config)
    await h.call("login", "acme", CREDENTIALS)
    other_origin = base_url.replace("127.0.0.1", "localhost")  # same server, another origin

    own = await h.get("acme", "/public")
    foreign = await h.get("acme", f"{other_origin}/public")

    assert own.json()["authorization"].startswith("Bearer ")
    assert foreign.json() == {"authorization": None}


async def test_allowed_origins_widen_where_the_token_goes(config: JWTConfig, base_url: str) -> None:
    other_origin = base_url.replace("127.0.0.1", "localhost")
    async with AsyncTokenManager(config, store=MemoryTokenStore()) as manager:
        await manager.login("acme", CREDENTIALS)
        async with manager.client(
            "acme", base_url=base_url, allowed_origins=[base_url, other_origin]
        ) as client:
            response = await client.get(f"{other_origin}/public")

    assert response.json()["authorization"].startswith("Bearer ")


async def test_plain_auth_works_on_any_httpx_client(config: JWTConfig, base_url: str) -> None:
    async with AsyncTokenManager(config, store=MemoryTokenStore()) as manager:
        state = await manager.login("acme", CREDENTIALS)
        async with httpx.AsyncClient(auth=manager.auth("acme")) as client:
            response = await client.get(f"{base_url}/public")

    assert response.json() == {"authorization": f"Bearer {state.token}"}


def test_sync_auth_on_async_client_is_refused(config: JWTConfig, base_url: str) -> None:
    with (
        TokenManager(config, store=MemoryTokenStore()) as manager,
        httpx.Client(auth=manager.auth("acme")) as client,
    ):
        assert client.get(f"{base_url}/public").status_code == 200
    async_manager = AsyncTokenManager(config, store=MemoryTokenStore())
    with (
        httpx.Client(auth=async_manager.auth("acme")) as client,
        pytest.raises(RuntimeError, match="AsyncTokenManager"),
    ):
        client.get(f"{base_url}/public")


async def test_clients_share_the_managers_pool(config: JWTConfig, base_url: str) -> None:
    async with AsyncTokenManager(config, store=MemoryTokenStore()) as manager:
        await manager.login("acme", CREDENTIALS)
        for _ in range(3):
            async with manager.client("acme", base_url=base_url) as client:
                assert (await client.get("/public")).status_code == 200
        # closing per-request clients left the shared pool open, with its one connection
        pool = manager._transport._pool  # type: ignore[attr-defined]
        assert len(pool.connections) == 1


@pytest.mark.parametrize(
    "tenant", ["", "a" * 129, "../etc", "x y", "a'; DROP TABLE t; --", "tenant\n", 7, None]
)
async def test_hostile_tenant_ids_are_refused(config: JWTConfig, tenant: Any) -> None:
    async with AsyncTokenManager(config, store=MemoryTokenStore()) as manager:
        with pytest.raises(InvalidTenantError, match="invalid tenant id"):
            manager.client(tenant)
        with pytest.raises(InvalidTenantError):
            await manager.login(tenant, CREDENTIALS)


@pytest.mark.parametrize(
    ("header", "custom"), [("Authorization", False), ("Authorization", True), ("X-Api-Token", True)]
)
async def test_redirects_to_another_origin_carry_no_credentials(
    make: Any, base_url: str, header: str, custom: bool
) -> None:
    def authenticate(request: httpx.Request, view: TenantView) -> None:
        request.headers[header] = f"Bearer {view.token}"

    h = make(
        JWTConfig(login=Endpoint(f"{base_url}/auth"), authenticate=authenticate if custom else None)
    )
    await h.call("login", "acme", CREDENTIALS)
    foreign = base_url.replace("127.0.0.1", "localhost")

    same = await h.get(
        "acme", "/redirect", params={"to": f"{base_url}/api/echo"}, follow_redirects=True
    )
    away = await h.get(
        "acme", "/redirect", params={"to": f"{foreign}/api/echo"}, follow_redirects=True
    )

    assert header.lower() in same.json()["headers"]
    assert header.lower() not in away.json()["headers"]
    assert "authorization" not in away.json()["headers"]


async def test_many_unknown_tenants_do_not_grow_memory_without_bound(
    config: JWTConfig, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("jwt_outbound._manager.CACHE_LIMIT", 50)
    async with AsyncTokenManager(config, store=MemoryTokenStore()) as manager:
        await manager.login("acme", CREDENTIALS)
        for i in range(200):  # e.g. random tenant headers from the internet
            async with manager.client(f"probe-{i}", base_url=base_url) as client:
                await client.get("/public")
        assert len(manager._cache) == 50
        assert "probe-199" in manager._cache
        async with manager.client("acme", base_url=base_url) as client:  # read again: still works
            assert (await client.get("/public")).json()["authorization"].startswith("Bearer ")
