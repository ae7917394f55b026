from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from jwt_outbound import (
    AsyncTokenManager,
    Endpoint,
    JWTConfig,
    MemoryTokenStore,
    TokenManager,
    migrate,
)

from .databases import BACKENDS, database_url, drop_tables
from .issuer import PASSWORD, Issuer, build_app, serve

CREDENTIALS = {"username": "acme", "password": PASSWORD}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=BACKENDS)
def migrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database of each kind (SQLite always; PostgreSQL and MariaDB when
    their URLs are set), dropped afterwards."""
    url = database_url(request.param, tmp_path)
    drop_tables(url)  # what an interrupted run may have left
    migrate(url)
    yield url
    drop_tables(url)


@pytest.fixture(scope="session")
def issuer_server() -> Iterator[tuple[Issuer, str]]:
    issuer = Issuer()
    with serve(build_app(issuer)) as base_url:
        yield issuer, base_url


@pytest.fixture
def issuer(issuer_server: tuple[Issuer, str]) -> Issuer:
    issuer_server[0].reset()
    return issuer_server[0]


@pytest.fixture
def base_url(issuer_server: tuple[Issuer, str]) -> str:
    return issuer_server[1]


@pytest.fixture
def config(base_url: str) -> JWTConfig:
    """The original's own shape: JWT login and refresh endpoints, no leeway."""
    return JWTConfig(
        login=Endpoint(f"{base_url}/auth"),
        refresh=Endpoint(f"{base_url}/auth/refresh"),
        leeway=0,
    )


class Harness:
    """Drives a sync or an async manager through one async-looking surface, so that every
    behaviour test runs against both managers (the sync one from a worker thread)."""

    def __init__(self, manager: TokenManager | AsyncTokenManager, base_url: str) -> None:
        self.manager = manager
        self.base_url = base_url
        self.is_async = isinstance(manager, AsyncTokenManager)

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.manager, name)
        if self.is_async:
            result = method(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result
        return await anyio.to_thread.run_sync(lambda: method(*args, **kwargs))

    async def request(self, tenant: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if isinstance(self.manager, AsyncTokenManager):
            async with self.manager.client(tenant, base_url=self.base_url) as client:
                return await client.request(method, path, **kwargs)
        sync_manager = self.manager

        def run() -> httpx.Response:
            with sync_manager.client(tenant, base_url=self.base_url) as client:
                return client.request(method, path, **kwargs)

        return await anyio.to_thread.run_sync(run)

    async def get(self, tenant: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request(tenant, "GET", path, **kwargs)


@pytest.fixture(params=["async", "sync"])
async def make(
    request: pytest.FixtureRequest, base_url: str, issuer: Issuer
) -> AsyncIterator[Callable[..., Harness]]:
    """``make(config, **manager_kwargs)`` -> a Harness over the parametrized manager kind."""
    made: list[Harness] = []
    flavour = request.param

    def factory(config: JWTConfig, **kwargs: Any) -> Harness:
        cls = AsyncTokenManager if flavour == "async" else TokenManager
        kwargs.setdefault("store", MemoryTokenStore())
        harness = Harness(cls(config, **kwargs), base_url)
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        if isinstance(harness.manager, AsyncTokenManager):
            await harness.manager.aclose()
        else:
            harness.manager.close()
