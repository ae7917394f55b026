"""In-process single flight and tenant isolation under concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import pytest

from jwt_outbound import (
    AsyncTokenManager,
    CredentialsExpiredError,
    JWTConfig,
    MemoryTokenStore,
    TokenEndpointError,
    TokenManager,
)

from .conftest import CREDENTIALS
from .issuer import PASSWORD, Issuer

pytestmark = pytest.mark.anyio


async def test_100_coroutines_on_an_expired_token_refresh_once(
    config: JWTConfig, issuer: Issuer, base_url: str
) -> None:
    async with AsyncTokenManager(config, store=MemoryTokenStore()) as manager:
        issuer.token_ttl = -10
        await manager.login("acme", CREDENTIALS)
        issuer.token_ttl = 300
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


def test_20_threads_on_an_expired_token_refresh_once(
    config: JWTConfig, issuer: Issuer, base_url: str
) -> None:
    with TokenManager(config, store=MemoryTokenStore()) as manager:
        issuer.token_ttl = -10
        manager.login("acme", CREDENTIALS)
        issuer.token_ttl = 300
        issuer.delay = 0.05  # a slow endpoint widens the window for a second refresh
        barrier = threading.Barrier(20)

        def call() -> int:
            with manager.client("acme", base_url=base_url) as client:
                barrier.wait()
                return client.get("/api/whoami").status_code

        with ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(lambda _: call(), range(20)))

    assert statuses == [200] * 20
    assert issuer.refresh_calls == 1
    assert issuer.reuse == 0


async def test_10_tenants_concurrently_each_carry_their_own_token(
    config: JWTConfig, issuer: Issuer, base_url: str
) -> None:
    tenants = [f"tenant-{i}" for i in range(10)]
    async with AsyncTokenManager(
        config,
        credentials_provider=lambda t: {"username": t, "password": PASSWORD},
        store=MemoryTokenStore(),
    ) as manager:
        issuer.token_ttl = -10  # the first tokens are expired: every tenant refreshes too
        for tenant in tenants:
            await manager.login(tenant, {"username": tenant, "password": PASSWORD})
        issuer.token_ttl = 300
        mismatches: list[tuple[str, str]] = []

        async def call(tenant: str) -> None:
            async with manager.client(tenant, base_url=base_url) as client:
                body = (await client.get("/api/whoami", params={"tenant": tenant})).json()
                if body.get("sub") != tenant:
                    mismatches.append((tenant, body.get("sub")))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                for tenant in tenants:
                    tg.start_soon(call, tenant)

    assert mismatches == []
    assert sorted(sub for sub, _ in issuer.seen_tokens) == sorted(tenants * 10)
    assert issuer.refresh_calls == 10
    assert issuer.reuse == 0


def test_10_tenants_in_threads_each_carry_their_own_token(
    config: JWTConfig, issuer: Issuer, base_url: str
) -> None:
    tenants = [f"tenant-{i}" for i in range(10)]
    with TokenManager(
        config,
        credentials_provider=lambda t: {"username": t, "password": PASSWORD},
        store=MemoryTokenStore(),
    ) as manager:

        def call(tenant: str) -> str | None:
            with manager.client(tenant, base_url=base_url) as client:
                sub: str | None = client.get("/api/whoami").json().get("sub")
                return sub

        with ThreadPoolExecutor(10) as pool:
            subs = list(pool.map(call, tenants * 5))

    assert subs == tenants * 5
    assert issuer.login_calls == 10  # one login per tenant, however many threads asked


async def test_provider_logs_in_once_for_many_coroutines(
    config: JWTConfig, issuer: Issuer, base_url: str
) -> None:
    calls: list[str] = []

    async def provider(tenant: str) -> dict[str, str]:
        calls.append(tenant)
        return {"username": tenant, "password": PASSWORD}

    async with (
        AsyncTokenManager(
            config, credentials_provider=provider, store=MemoryTokenStore()
        ) as manager,
        manager.client("acme", base_url=base_url) as client,
        anyio.create_task_group() as tg,
    ):
        for _ in range(50):
            tg.start_soon(client.get, "/api/whoami")

    assert calls == ["acme"]
    assert issuer.login_calls == 1
    assert issuer.seen_tokens == [("acme", "/api/whoami")] * 50


@pytest.mark.parametrize(
    ("failure", "error"), [(503, TokenEndpointError), (None, CredentialsExpiredError)]
)
async def test_waiters_share_the_one_renewals_failure(
    config: JWTConfig, issuer: Issuer, base_url: str, failure: int | None, error: type[Exception]
) -> None:
    async with AsyncTokenManager(config, store=MemoryTokenStore()) as manager:
        issuer.token_ttl = -10
        state = await manager.login("acme", CREDENTIALS)
        if failure is None:
            issuer.rotate(state.refresh_token or "")  # spent: the refresh will be refused
        issuer.failure = failure
        issuer.delay = 0.05
        expired: list[object] = []
        manager.on_expired(expired.append)
        raised: list[BaseException] = []

        async def call(client: httpx.AsyncClient) -> None:
            try:
                await client.get("/api/whoami")
            except Exception as exc:
                raised.append(exc)

        async with (
            manager.client("acme", base_url=base_url) as client,
            anyio.create_task_group() as tg,
        ):
            for _ in range(50):
                tg.start_soon(call, client)

    assert len(raised) == 50
    assert all(type(exc) is error and exc.tenant == "acme" for exc in raised)  # type: ignore[attr-defined]
    assert len({id(exc) for exc in raised}) == 50  # each waiter got its own copy
    assert len([r for r in issuer.token_requests if r["path"] == "/auth/refresh"]) == 1
    assert len(expired) == (1 if failure is None else 0)
    assert issuer.api_calls == 0


async def test_a_cancelled_renewal_is_taken_over_by_a_waiter(
    config: JWTConfig, issuer: Issuer, base_url: str
) -> None:
    async with AsyncTokenManager(config, store=MemoryTokenStore()) as manager:
        issuer.token_ttl = -10
        await manager.login("acme", CREDENTIALS)
        issuer.token_ttl = 300
        issuer.delay = 0.3
        statuses: list[int] = []
        async with manager.client("acme", base_url=base_url) as client:
            leader = anyio.CancelScope()

            async def lead() -> None:
                with leader:
                    await client.get("/api/whoami")

            async def follow() -> None:
                statuses.append((await client.get("/api/whoami")).status_code)

            with anyio.fail_after(5):  # not the 30 s the leader's lease would hold
                async with anyio.create_task_group() as tg:
                    tg.start_soon(lead)
                    await anyio.sleep(0.1)  # the leader waits at the token endpoint
                    tg.start_soon(follow)
                    await anyio.sleep(0.05)
                    leader.cancel()

    assert leader.cancelled_caught
    assert statuses == [200]
    assert issuer.refresh_calls == 1  # the cancelled request was abandoned at the endpoint
    assert issuer.reuse == 0


def test_threads_share_one_failed_renewal(config: JWTConfig, issuer: Issuer, base_url: str) -> None:
    with TokenManager(config, store=MemoryTokenStore()) as manager:
        issuer.token_ttl = -10
        before = manager.login("acme", CREDENTIALS)
        issuer.failure = 503
        issuer.delay = 0.1
        barrier = threading.Barrier(20)

        def call() -> str:
            with manager.client("acme", base_url=base_url) as client:
                barrier.wait()
                try:
                    client.get("/api/whoami")
                except TokenEndpointError as exc:
                    return f"{type(exc).__name__} {exc.status_code}"
                return "sent"

        with ThreadPoolExecutor(20) as pool:
            outcomes = list(pool.map(lambda _: call(), range(20)))
        assert manager.state("acme") == before

    assert outcomes == ["TokenEndpointError 503"] * 20
    assert len([r for r in issuer.token_requests if r["path"] == "/auth/refresh"]) == 1
