from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from jwt_outbound import MemoryTokenStore, TokenStore
from jwt_outbound._migrate import migrate
from jwt_outbound._store import SQLTokenStore

from ..databases import BACKENDS, database_url, drop_tables


def checked_out(store: TokenStore) -> list[int]:
    """Connections of each engine the store uses that are not back in their pool."""
    if not isinstance(store, SQLTokenStore):
        return []
    return [engine.pool.checkedout() for engine in store._engines.in_use]


STORES = [
    pytest.param("memory", id="memory"),
    *BACKENDS,
    pytest.param("aiosqlite", id="aiosqlite"),
]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TokenStore]:
    """Every store kind, over an empty, freshly migrated table for the SQL ones."""
    if request.param == "memory":
        yield MemoryTokenStore()
        return
    url = database_url(request.param, tmp_path)
    drop_tables(url)  # what an interrupted run may have left
    migrate(url)
    sql_store = SQLTokenStore(url)
    try:
        yield sql_store
        assert checked_out(sql_store) == [0] * len(checked_out(sql_store))
    finally:
        sql_store.close()
        drop_tables(url)


class Flavour:
    """A store seen through its blocking methods or its async ones, with one spelling."""

    def __init__(self, store: TokenStore, use_async: bool) -> None:
        self.store = store
        self.use_async = use_async

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, f"a{name}" if self.use_async else name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            return await result if self.use_async else result

        return call


@pytest.fixture(params=["sync", "async"])
async def flavour(request: pytest.FixtureRequest, store: TokenStore) -> AsyncIterator[Flavour]:
    yield Flavour(store, use_async=request.param == "async")
    assert not any(checked_out(store)), "a pooled connection was not returned"
    await store.aclose()  # in this event loop: the async engine's connections belong to it
