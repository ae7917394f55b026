"""The store protocol every token store implements, sync and async."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

import anyio.to_thread

if TYPE_CHECKING:
    from .._state import TokenState

__all__ = ["TokenStore"]


class TokenStore(abc.ABC):
    """Where token state lives, keyed by tenant.

    Writes compare and swap on ``TokenState.version``: ``save`` with ``expected_version=None``
    inserts only if the tenant has no row; otherwise it writes only over that exact version, and
    returns whether it wrote. ``acquire_lease`` takes a tenant's refresh lease if the row is
    still at ``version`` and no live lease is held; saving a state clears the lease.

    The async methods run the sync ones in a worker thread unless a store overrides them.
    """

    @abc.abstractmethod
    def get(self, tenant: str) -> TokenState | None: ...

    @abc.abstractmethod
    def save(self, state: TokenState, *, expected_version: int | None) -> bool: ...

    @abc.abstractmethod
    def delete(self, tenant: str, *, expected_version: int | None = None) -> bool: ...

    @abc.abstractmethod
    def states(self) -> list[TokenState]: ...

    @abc.abstractmethod
    def acquire_lease(self, tenant: str, *, version: int, owner: str, seconds: float) -> bool: ...

    @abc.abstractmethod
    def release_lease(self, tenant: str, *, owner: str) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional for stores that hold nothing
        """Release connections; the store is not used afterwards."""

    async def aget(self, tenant: str) -> TokenState | None:
        return await anyio.to_thread.run_sync(self.get, tenant)

    async def asave(self, state: TokenState, *, expected_version: int | None) -> bool:
        return await anyio.to_thread.run_sync(
            lambda: self.save(state, expected_version=expected_version)
        )

    async def adelete(self, tenant: str, *, expected_version: int | None = None) -> bool:
        return await anyio.to_thread.run_sync(
            lambda: self.delete(tenant, expected_version=expected_version)
        )

    async def astates(self) -> list[TokenState]:
        return await anyio.to_thread.run_sync(self.states)

    async def aacquire_lease(
        self, tenant: str, *, version: int, owner: str, seconds: float
    ) -> bool:
        return await anyio.to_thread.run_sync(
            lambda: self.acquire_lease(tenant, version=version, owner=owner, seconds=seconds)
        )

    async def arelease_lease(self, tenant: str, *, owner: str) -> None:
        await anyio.to_thread.run_sync(lambda: self.release_lease(tenant, owner=owner))

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close)
