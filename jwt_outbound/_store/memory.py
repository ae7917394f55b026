"""MemoryTokenStore: state in this process only (tests, a single worker)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .base import TokenStore

if TYPE_CHECKING:
    from .._state import TokenState

__all__ = ["MemoryTokenStore"]


class MemoryTokenStore(TokenStore):
    """A dict guarded by a lock. Nothing is shared with other processes."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, TokenState] = {}
        self._leases: dict[str, tuple[str, float]] = {}

    def __repr__(self) -> str:
        return f"MemoryTokenStore(tenants={len(self._states)})"

    def get(self, tenant: str) -> TokenState | None:
        return self._states.get(tenant)

    def save(self, state: TokenState, *, expected_version: int | None) -> bool:
        with self._lock:
            current = self._states.get(state.tenant)
            found = None if current is None else current.version
            if found != expected_version:
                return False
            self._states[state.tenant] = state
            self._leases.pop(state.tenant, None)
            return True

    def delete(self, tenant: str, *, expected_version: int | None = None) -> bool:
        with self._lock:
            current = self._states.get(tenant)
            if current is None:
                return False
            if expected_version is not None and current.version != expected_version:
                return False
            del self._states[tenant]
            self._leases.pop(tenant, None)
            return True

    def states(self) -> list[TokenState]:
        with self._lock:
            return sorted(self._states.values(), key=lambda s: s.tenant)

    def acquire_lease(self, tenant: str, *, version: int, owner: str, seconds: float) -> bool:
        with self._lock:
            current = self._states.get(tenant)
            if current is None or current.version != version:
                return False
            now = self._clock()
            lease = self._leases.get(tenant)
            if lease is not None and lease[1] > now:
                return False
            self._leases[tenant] = (owner, now + seconds)
            return True

    def release_lease(self, tenant: str, *, owner: str) -> None:
        with self._lock:
            lease = self._leases.get(tenant)
            if lease is not None and lease[0] == owner:
                del self._leases[tenant]

    # Nothing here blocks: no worker thread needed.
    async def aget(self, tenant: str) -> TokenState | None:
        return self.get(tenant)

    async def asave(self, state: TokenState, *, expected_version: int | None) -> bool:
        return self.save(state, expected_version=expected_version)

    async def adelete(self, tenant: str, *, expected_version: int | None = None) -> bool:
        return self.delete(tenant, expected_version=expected_version)

    async def astates(self) -> list[TokenState]:
        return self.states()

    async def aacquire_lease(
        self, tenant: str, *, version: int, owner: str, seconds: float
    ) -> bool:
        return self.acquire_lease(tenant, version=version, owner=owner, seconds=seconds)

    async def arelease_lease(self, tenant: str, *, owner: str) -> None:
        self.release_lease(tenant, owner=owner)

    async def aclose(self) -> None:
        self.close()
