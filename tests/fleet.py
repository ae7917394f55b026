"""Worker processes for the fleet tests: each is one service worker with its own manager, sharing
token state with the others only through the SQL store."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio

from jwt_outbound import (
    AsyncTokenManager,
    Endpoint,
    JWTConfig,
    JWTOutboundError,
    SQLTokenStore,
    TokenManager,
)

from .issuer import PASSWORD


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one worker process does; picklable for the spawn start method."""

    database_url: str
    issuer_url: str
    tenants: tuple[str, ...]
    per_tenant: int  # concurrent requests per tenant
    refresh_lease: float = 30.0
    refresh_timeout: float = 10.0
    provider: bool = False  # log in again with the issuer's password when nothing can refresh
    sync: bool = False  # a TokenManager with one thread per request, not an AsyncTokenManager


def config(plan: Plan) -> JWTConfig:
    return JWTConfig(
        login=Endpoint(f"{plan.issuer_url}/auth"),
        refresh=Endpoint(f"{plan.issuer_url}/auth/refresh", timeout=plan.refresh_timeout),
        leeway=0,
        refresh_lease=plan.refresh_lease,
    )


def run_requests(plan: Plan, ready: Any, go: Any, results: Any) -> None:
    """Process entry: build a manager, say ready, wait for ``go``, then fire every request at once
    and put ``(outcomes, seconds from go to done, pooled connections left checked out)``."""
    if plan.sync:
        _threaded_requests(plan, ready, go, results)
    else:
        asyncio.run(_requests(plan, ready, go, results))


def _threaded_requests(plan: Plan, ready: Any, go: Any, results: Any) -> None:
    store = SQLTokenStore(plan.database_url)
    jobs = [tenant for tenant in plan.tenants for _ in range(plan.per_tenant)]
    barrier = threading.Barrier(len(jobs) + 1)

    def call(manager: TokenManager, tenant: str) -> tuple[str, str]:
        with manager.client(tenant, base_url=plan.issuer_url) as client:
            barrier.wait()
            try:
                response = client.get("/api/whoami")
                return tenant, response.json().get("sub") or f"status {response.status_code}"
            except JWTOutboundError as exc:
                return tenant, type(exc).__name__

    with TokenManager(config(plan), store=store) as manager, ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(call, manager, tenant) for tenant in jobs]
        ready.set()
        go.wait()
        started = time.monotonic()
        barrier.wait()
        outcomes = [future.result() for future in futures]
        elapsed = time.monotonic() - started
    leaked = sum(engine.pool.checkedout() for engine in store._engines.in_use)
    store.close()
    results.put((outcomes, elapsed, leaked))


async def _requests(plan: Plan, ready: Any, go: Any, results: Any) -> None:
    store = SQLTokenStore(plan.database_url)
    outcomes: list[tuple[str, str]] = []
    provider = (
        (lambda tenant: {"username": tenant, "password": PASSWORD}) if plan.provider else None
    )
    async with AsyncTokenManager(
        config(plan), store=store, credentials_provider=provider
    ) as manager:
        clients = {t: manager.client(t, base_url=plan.issuer_url) for t in plan.tenants}
        ready.set()
        await anyio.to_thread.run_sync(go.wait)
        started = time.monotonic()

        async def call(tenant: str) -> None:
            try:
                response = await clients[tenant].get("/api/whoami")
                body = response.json()
                outcomes.append((tenant, body.get("sub") or f"status {response.status_code}"))
            except JWTOutboundError as exc:
                outcomes.append((tenant, type(exc).__name__))

        async with anyio.create_task_group() as tg:
            for tenant in plan.tenants:
                for _ in range(plan.per_tenant):
                    tg.start_soon(call, tenant)
        elapsed = time.monotonic() - started
        for client in clients.values():
            await client.aclose()
        leaked = sum(engine.pool.checkedout() for engine in store._engines.in_use)
    await store.aclose()
    results.put((outcomes, elapsed, leaked))
