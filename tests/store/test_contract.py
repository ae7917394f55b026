"""The TokenStore contract, for every store, through blocking and async methods alike."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

from jwt_outbound import TokenState, TokenStore

from ..databases import unique_tenant
from .conftest import Flavour

pytestmark = pytest.mark.anyio


def make_state(tenant: str, version: int = 1, **changes: object) -> TokenState:
    state = TokenState(
        tenant=tenant,
        token=f"access-{tenant}-{version}",
        token_exp=1_900_000_000,
        refresh_token=f"refresh-{tenant}-{version}",
        refresh_token_exp=1_900_086_400,
        date=1_899_996_400,
        extra={"scope": "read write", "claims": {"roles": ["a", "b"], "n": 3}, "ok": True},
        version=version,
    )
    return state.replace(**changes)


async def test_get_missing_is_none(flavour: Flavour) -> None:
    assert await flavour.get(unique_tenant()) is None


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="every-field"),
        pytest.param(
            {"token_exp": None, "refresh_token": None, "refresh_token_exp": None, "extra": {}},
            id="nones",
        ),
        pytest.param({"extra": {"name": "Zoë ✓", "big": 2**53, "nested": [None, 1.5]}}, id="json"),
    ],
)
async def test_insert_round_trips(flavour: Flavour, changes: dict[str, object]) -> None:
    state = make_state(unique_tenant(), version=7, **changes)
    assert await flavour.save(state, expected_version=None) is True
    loaded = await flavour.get(state.tenant)
    assert loaded == state
    assert dict(loaded.extra) == dict(state.extra)
    assert (loaded.token, loaded.refresh_token, loaded.version) == (
        state.token,
        state.refresh_token,
        7,
    )


async def test_insert_only_when_absent(flavour: Flavour) -> None:
    first = make_state(unique_tenant())
    assert await flavour.save(first, expected_version=None) is True
    second = first.replace(token="other")
    assert await flavour.save(second, expected_version=None) is False
    assert await flavour.get(first.tenant) == first


async def test_update_compares_and_swaps_on_version(flavour: Flavour) -> None:
    state = make_state(unique_tenant())
    await flavour.save(state, expected_version=None)
    newer = make_state(state.tenant, version=2)

    assert await flavour.save(newer, expected_version=5) is False
    assert await flavour.get(state.tenant) == state
    assert await flavour.save(newer, expected_version=1) is True
    assert await flavour.get(state.tenant) == newer
    # A stale writer that read version 1 changes nothing now.
    assert await flavour.save(make_state(state.tenant, version=2), expected_version=1) is False


async def test_update_of_missing_row_writes_nothing(flavour: Flavour) -> None:
    state = make_state(unique_tenant(), version=2)
    assert await flavour.save(state, expected_version=1) is False
    assert await flavour.get(state.tenant) is None


async def test_update_with_unchanged_values_still_counts(flavour: Flavour) -> None:
    # MySQL reports "affected" rows unless asked for "found" rows: identical values must not
    # look like a lost race.
    state = make_state(unique_tenant())
    await flavour.save(state, expected_version=None)
    assert await flavour.save(state, expected_version=1) is True
    assert await flavour.save(state, expected_version=1) is True


async def test_delete(flavour: Flavour) -> None:
    state = make_state(unique_tenant(), version=3)
    await flavour.save(state, expected_version=None)

    assert await flavour.delete(state.tenant, expected_version=2) is False
    assert await flavour.get(state.tenant) == state
    assert await flavour.delete(state.tenant, expected_version=3) is True
    assert await flavour.get(state.tenant) is None
    assert await flavour.delete(state.tenant) is False


async def test_delete_without_version(flavour: Flavour) -> None:
    state = make_state(unique_tenant(), version=9)
    await flavour.save(state, expected_version=None)
    assert await flavour.delete(state.tenant) is True
    assert await flavour.get(state.tenant) is None


async def test_lease_is_exclusive_until_it_runs_out(flavour: Flavour) -> None:
    state = make_state(unique_tenant())
    await flavour.save(state, expected_version=None)
    tenant = state.tenant

    assert await flavour.acquire_lease(tenant, version=1, owner="a", seconds=0.3) is True
    assert await flavour.acquire_lease(tenant, version=1, owner="b", seconds=0.3) is False
    assert await flavour.acquire_lease(tenant, version=1, owner="a", seconds=0.3) is False
    await anyio.sleep(0.5)
    assert await flavour.acquire_lease(tenant, version=1, owner="b", seconds=30) is True
    assert await flavour.acquire_lease(tenant, version=1, owner="a", seconds=30) is False


async def test_lease_needs_the_row_at_that_version(flavour: Flavour) -> None:
    state = make_state(unique_tenant(), version=4)
    assert await flavour.acquire_lease(state.tenant, version=4, owner="a", seconds=30) is False
    await flavour.save(state, expected_version=None)
    assert await flavour.acquire_lease(state.tenant, version=3, owner="a", seconds=30) is False
    assert await flavour.acquire_lease(state.tenant, version=4, owner="a", seconds=30) is True


async def test_saving_clears_the_lease(flavour: Flavour) -> None:
    state = make_state(unique_tenant())
    await flavour.save(state, expected_version=None)
    assert await flavour.acquire_lease(state.tenant, version=1, owner="a", seconds=30) is True

    assert await flavour.save(make_state(state.tenant, version=2), expected_version=1) is True
    assert await flavour.acquire_lease(state.tenant, version=2, owner="b", seconds=30) is True


async def test_release_only_by_the_owner(flavour: Flavour) -> None:
    state = make_state(unique_tenant())
    await flavour.save(state, expected_version=None)
    tenant = state.tenant
    assert await flavour.acquire_lease(tenant, version=1, owner="a", seconds=30) is True

    assert await flavour.release_lease(tenant, owner="b") is None
    assert await flavour.acquire_lease(tenant, version=1, owner="c", seconds=30) is False
    await flavour.release_lease(tenant, owner="a")
    assert await flavour.acquire_lease(tenant, version=1, owner="c", seconds=30) is True
    await flavour.release_lease(unique_tenant(), owner="c")  # no row: nothing happens
    assert await flavour.get(tenant) == state  # leases never change the state


async def test_states_sorted_by_tenant(flavour: Flavour) -> None:
    assert await flavour.states() == []
    prefix = unique_tenant()
    names = [f"{prefix}-{suffix}" for suffix in ("b", "B", "a", "A", "_", "a.1", "Z", "0")]
    for name in names:
        await flavour.save(make_state(name), expected_version=None)
    states = await flavour.states()
    assert [state.tenant for state in states] == sorted(names)
    assert states == [make_state(name) for name in sorted(names)]


HOSTILE = [
    "'; DROP TABLE jwt_outbound_tokens; --",
    "o'brien",
    'say "hi"',
    "back\\slash",
    "%s %(tenant)s :tenant ? $1",
    "acme",
    "Acme",
    "ACME",
    "acme ",
    " acme",
    "tenánt-✓",
    "x" * 128,
]


async def test_hostile_tenants_are_stored_verbatim(flavour: Flavour) -> None:
    # Each is bound as a parameter, and compared byte for byte: no two of them share a row.
    for tenant in HOSTILE:
        assert await flavour.save(make_state(tenant), expected_version=None) is True
    for tenant in HOSTILE:
        loaded = await flavour.get(tenant)
        assert loaded is not None
        assert (loaded.tenant, loaded.token) == (tenant, f"access-{tenant}-1")
    assert [state.tenant for state in await flavour.states()] == sorted(HOSTILE)
    assert await flavour.delete("acme", expected_version=1) is True
    assert await flavour.get("Acme") is not None
    assert await flavour.get("acme ") is not None


async def test_concurrent_leases_have_one_winner(flavour: Flavour) -> None:
    state = make_state(unique_tenant())
    await flavour.save(state, expected_version=None)
    winners: list[str] = []

    async def contend(owner: str) -> None:
        if await flavour.acquire_lease(state.tenant, version=1, owner=owner, seconds=30):
            winners.append(owner)

    async with anyio.create_task_group() as group:
        for index in range(8):
            group.start_soon(contend, f"owner-{index}")
    assert len(winners) == 1


def test_threads_racing_for_a_lease_and_a_write_have_one_winner(store: TokenStore) -> None:
    # Threads use separate connections: the database, not a Python lock, decides.
    state = make_state(unique_tenant())
    store.save(state, expected_version=None)
    barrier = threading.Barrier(8)

    def lease(index: int) -> bool:
        barrier.wait()
        return store.acquire_lease(state.tenant, version=1, owner=f"o{index}", seconds=30)

    def write(index: int) -> bool:
        barrier.wait()
        return store.save(make_state(state.tenant, 2, token=f"t{index}"), expected_version=1)

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(lease, range(8))) == 1
        written = list(pool.map(write, range(8)))
    assert sum(written) == 1
    stored = store.get(state.tenant)
    assert stored is not None
    assert stored.token == f"t{written.index(True)}"
