"""Several worker processes sharing one SQL store: one refresh per tenant for the whole fleet."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from jwt_outbound import SQLTokenStore, TokenManager

from .databases import unique_tenant
from .fleet import Plan, config, run_requests
from .issuer import PASSWORD, Issuer

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def db(migrated_url: str) -> str:
    return migrated_url


def login_expired(url: str, issuer: Issuer, plan: Plan, tenants: list[str]) -> None:
    """Log every tenant in with an access token that is already expired."""
    issuer.token_ttl = -10
    store = SQLTokenStore(url)
    with TokenManager(config(plan), store=store) as manager:
        for tenant in tenants:
            manager.login(tenant, {"username": tenant, "password": PASSWORD})
    store.close()
    issuer.token_ttl = 300
    issuer.login_calls = 0


class Fleet:
    """Worker processes that start together and report their outcomes."""

    def __init__(self, plans: list[Plan]) -> None:
        self.go = SPAWN.Event()
        self.results: Any = SPAWN.Queue()
        self.ready = [SPAWN.Event() for _ in plans]
        self.processes = [
            SPAWN.Process(
                target=run_requests, args=(plan, ready, self.go, self.results), daemon=True
            )
            for plan, ready in zip(plans, self.ready, strict=True)
        ]
        for process in self.processes:
            process.start()
        for ready in self.ready:
            assert ready.wait(60), "a worker process did not start"

    def run(self) -> list[tuple[list[tuple[str, str]], float, int]]:
        self.go.set()
        return self.collect(len(self.processes))

    def collect(self, count: int) -> list[tuple[list[tuple[str, str]], float, int]]:
        reports = [self.results.get(timeout=60) for _ in range(count)]
        for process in self.processes:
            process.join(30)
        return reports

    def stop(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill()
            process.join(10)


@pytest.fixture
def fleets() -> Iterator[list[Fleet]]:
    started: list[Fleet] = []
    yield started
    for fleet in started:
        fleet.stop()


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_4_processes_x_25_requests_refresh_once(
    db: str, issuer: Issuer, base_url: str, fleets: list[Fleet], kind: str
) -> None:
    tenant = unique_tenant("fleet")
    plan = Plan(db, base_url, (tenant,), per_tenant=25, sync=kind == "sync")
    login_expired(db, issuer, plan, [tenant])
    issuer.delay = 0.1  # a realistic endpoint: waiters pile up behind the one refresh
    fleet = Fleet([plan] * 4)
    fleets.append(fleet)

    reports = fleet.run()

    outcomes = [outcome for report in reports for outcome in report[0]]
    assert outcomes == [(tenant, tenant)] * 100
    assert issuer.refresh_calls == 1
    assert issuer.reuse == 0
    assert issuer.login_calls == 0
    assert [report[2] for report in reports] == [0, 0, 0, 0]  # no pooled connection leaked


def test_50_tenants_refreshing_at_once_stay_apart(
    db: str, issuer: Issuer, base_url: str, fleets: list[Fleet]
) -> None:
    tenants = [unique_tenant(f"t{i:02d}") for i in range(50)]
    plan = Plan(db, base_url, tuple(tenants), per_tenant=2)
    login_expired(db, issuer, plan, tenants)
    fleet = Fleet([plan, plan])
    fleets.append(fleet)

    reports = fleet.run()

    outcomes = [outcome for report in reports for outcome in report[0]]
    assert len(outcomes) == 200
    assert all(sub == tenant for tenant, sub in outcomes), [o for o in outcomes if o[0] != o[1]][:5]
    assert issuer.refresh_calls == 50
    assert issuer.reuse == 0


def test_killed_lease_holder_is_replaced_after_its_lease(
    db: str, issuer: Issuer, base_url: str, fleets: list[Fleet]
) -> None:
    tenant = unique_tenant("kill")
    lease = 2.0
    plan = Plan(db, base_url, (tenant,), per_tenant=1, refresh_lease=lease, refresh_timeout=1.5)
    login_expired(db, issuer, plan, [tenant])
    holder, successor = Fleet([plan]), Fleet([plan])
    fleets.extend([holder, successor])
    issuer.delay = 3.0  # the holder's refresh hangs at the endpoint

    holder.go.set()
    deadline = time.monotonic() + 20
    while not any(r["path"] == "/auth/refresh" for r in issuer.token_requests):
        assert time.monotonic() < deadline, "the holder never called the token endpoint"
        time.sleep(0.02)
    os.kill(holder.processes[0].pid, signal.SIGKILL)  # dies holding the lease
    issuer.delay = 0.0
    successor.go.set()

    [(outcomes, elapsed, leaked)] = successor.collect(1)

    assert outcomes == [(tenant, tenant)]
    assert elapsed <= lease + 1, f"the successor took {elapsed:.2f}s"
    assert leaked == 0
    deadline = time.monotonic() + 5
    while issuer.abandoned < 1 and time.monotonic() < deadline:  # the holder's hung request
        time.sleep(0.05)
    refreshes = [r for r in issuer.token_requests if r["path"] == "/auth/refresh"]
    assert len(refreshes) == 2  # the dead holder's and the successor's: one extra call
    assert issuer.refresh_calls == 1  # only the successor's completed
    assert issuer.abandoned == 1
    assert issuer.reuse == 0


def test_expired_credentials_are_renewed_by_one_login_for_the_fleet(
    db: str, issuer: Issuer, base_url: str, fleets: list[Fleet]
) -> None:
    tenant = unique_tenant("relogin")
    plan = Plan(db, base_url, (tenant,), per_tenant=10, provider=True)
    issuer.refresh_ttl = -10  # the refresh token is dead too: only a new login helps
    login_expired(db, issuer, plan, [tenant])
    issuer.refresh_ttl = 3600
    issuer.delay = 0.1
    fleet = Fleet([plan] * 4)
    fleets.append(fleet)

    reports = fleet.run()

    outcomes = [outcome for report in reports for outcome in report[0]]
    assert outcomes == [(tenant, tenant)] * 40
    assert issuer.login_calls == 1
    assert issuer.refresh_calls == 0
