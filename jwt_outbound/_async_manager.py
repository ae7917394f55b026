"""AsyncTokenManager: the decision core driven with asyncio (or trio) I/O."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx

from ._client import AsyncBorrowedTransport, AsyncTenantJWT, OutboundAsyncClient
from ._config import JWTConfig
from ._core import MISS
from ._effects import (
    AcquireLease,
    Call,
    Delete,
    Emit,
    Ensure,
    Fetch,
    Flow,
    Load,
    ReleaseLease,
    Save,
    Sleep,
    advance,
)
from ._events import Event, log_handler_error
from ._manager import (
    Flight,
    Manager,
    build_request,
    holds_lease,
    logger,
    resolved,
    total_timeout,
)
from ._origins import strip_foreign_credentials
from ._state import TokenState, validate_tenant
from ._store import TokenStore

__all__ = ["AsyncTokenManager"]


class AsyncTokenManager(Manager[anyio.Lock]):
    """Per-tenant JWTs for ``httpx.AsyncClient``: login, single-flight refresh, logout, hooks.

    ``credentials_provider(tenant)`` (sync or async) returns the credentials to log in with when
    a tenant has no usable token; without it, requests of a tenant that is not logged in are
    sent without a token. ``transport`` is the one connection pool every client shares.
    """

    def __init__(
        self,
        config: JWTConfig,
        *,
        store: TokenStore | None = None,
        credentials_provider: Callable[[str], Any] | None = None,
        clock: Callable[[], float] = time.time,
        state_ttl: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            config,
            store=store,
            credentials_provider=credentials_provider,
            clock=clock,
            state_ttl=state_ttl,
            sync=False,
        )
        self._owns_transport = transport is None
        self._transport = transport if transport is not None else httpx.AsyncHTTPTransport()
        self._shared = AsyncBorrowedTransport(self._transport)
        self._token_client = httpx.AsyncClient(transport=self._shared, trust_env=False)
        self._flights: dict[tuple[str, str | None], Flight] = {}

    async def login(self, tenant: str, credentials: Any) -> TokenState:
        """Log ``tenant`` in with ``credentials``; store and return its new state."""
        tenant = validate_tenant(tenant)
        async with self._lock(tenant, anyio.Lock):
            state: TokenState = await self._drive(self._core.login(tenant, credentials))
            return state

    async def refresh(self, tenant: str) -> TokenState:
        """Refresh now. A failure raises and logs nothing out."""
        tenant = validate_tenant(tenant)
        async with self._lock(tenant, anyio.Lock):
            state: TokenState = await self._drive(self._core.refresh(tenant))
            return state

    async def logout(self, tenant: str) -> bool:
        """Emit ``LogoutEvent`` and delete the state; ``False`` if there was none."""
        tenant = validate_tenant(tenant)
        async with self._lock(tenant, anyio.Lock):
            removed: bool = await self._drive(self._core.logout(tenant))
            return removed

    async def state(self, tenant: str) -> TokenState | None:
        tenant = validate_tenant(tenant)
        state: TokenState | None = await self._perform_async(Load(tenant))
        return state

    async def is_authenticated(self, tenant: str) -> bool:
        return (await self.state(tenant)) is not None

    def client(self, tenant: str, **options: Any) -> OutboundAsyncClient:
        """An ``httpx.AsyncClient`` bound to ``tenant`` on the manager's shared pool.

        Takes ``httpx.AsyncClient`` arguments plus ``allowed_origins`` (default: ``base_url``'s).
        """
        return OutboundAsyncClient(**self._client_options(validate_tenant(tenant), options))

    def _deferred_client(
        self, resolve_tenant: Callable[[], str | None], options: dict[str, Any]
    ) -> OutboundAsyncClient:
        """A client built on first use, for the tenant ``resolve_tenant`` names then."""
        return OutboundAsyncClient.deferred(
            lambda: self._client_options(resolved(resolve_tenant), dict(options))
        )

    def _tenant_jwt(self, tenant: str) -> AsyncTenantJWT:
        return AsyncTenantJWT(self, tenant)

    @staticmethod
    async def _strip_hook(request: httpx.Request) -> None:
        strip_foreign_credentials(request)

    async def aclose(self) -> None:
        await self._token_client.aclose()
        if self._owns_transport:
            await self._transport.aclose()
        if self._owns_store:
            await self.store.aclose()

    async def __aenter__(self) -> AsyncTokenManager:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the async driver --------------------------------------------------------------------

    async def _drive(self, flow: Flow) -> Any:
        value: Any = None
        error: BaseException | None = None
        leased: str | None = None
        while True:
            done, effect = advance(flow, value, error)
            if done:
                return effect
            value, error = None, None
            try:
                value = await self._perform_async(effect)
            except Exception as exc:
                error = exc
            except BaseException:
                if leased is not None:  # cancelled mid-refresh: let another worker go now
                    with anyio.CancelScope(shield=True):
                        await self._release_quietly(leased)
                raise
            else:
                leased = holds_lease(effect, value, leased)

    async def _release_quietly(self, tenant: str) -> None:
        try:
            await self.store.arelease_lease(tenant, owner=self._owner)
        except Exception:
            logger.warning("jwt_outbound: could not release the refresh lease of %r", tenant)

    async def _perform_async(self, effect: Any) -> Any:
        store = self.store
        # The per-request path first: a cached token and the authenticate hook.
        if isinstance(effect, Ensure):
            return await self._ensure(effect)
        if isinstance(effect, Call):
            result = effect.hook(*effect.args)
            return await result if inspect.isawaitable(result) else result
        if isinstance(effect, Load):
            state = await store.aget(effect.tenant)
            self._remember(effect.tenant, state)
            return state
        if isinstance(effect, Save):
            saved = await store.asave(effect.state, expected_version=effect.expected_version)
            if saved:
                self._remember(effect.state.tenant, effect.state)
            return saved
        if isinstance(effect, Delete):
            self._cache.pop(effect.tenant, None)
            return await store.adelete(effect.tenant, expected_version=effect.expected_version)
        if isinstance(effect, AcquireLease):
            return await store.aacquire_lease(
                effect.tenant,
                version=effect.version,
                owner=self._owner,
                seconds=self.config.refresh_lease,
            )
        if isinstance(effect, ReleaseLease):
            return await store.arelease_lease(effect.tenant, owner=self._owner)
        if isinstance(effect, Sleep):
            return await anyio.sleep(effect.seconds)
        if isinstance(effect, Fetch):
            request = build_request(self._token_client, effect.options)
            # httpx's timeouts bound each step (connect, each read, ...); a refresh must also
            # end as a whole before its lease does, so the timeout bounds the whole call here.
            with anyio.move_on_after(total_timeout(request)):
                return await self._token_client.send(request)
            raise httpx.ReadTimeout("the token request outlasted its timeout", request=request)
        if isinstance(effect, Emit):
            return await self._emit(effect.event)
        raise TypeError(f"no driver for {type(effect).__name__}")

    async def _ensure(self, effect: Ensure) -> TokenState | None:
        renewal = effect.rejected_token is not None
        if not renewal and (hit := self._cached(effect.tenant)) is not MISS:
            return hit  # type: ignore[no-any-return]
        key = (effect.tenant, effect.rejected_token)
        while (flight := self._flights.get(key)) is not None:
            # One coroutine renews; the others wait for its outcome and all wake at once
            # (a lock would hand itself on one waiter per event-loop turn).
            await flight.done.wait()
            if not flight.abandoned:
                return flight.outcome()
        flight = self._flights[key] = Flight(anyio.Event())
        try:
            async with self._lock(effect.tenant, anyio.Lock):
                # Whoever held the lock (a login, a refresh by hand) may have renewed it for us.
                if not renewal and (hit := self._cached(effect.tenant)) is not MISS:
                    flight.state = hit
                else:
                    flight.state = await self._drive(
                        self._core.ensure(effect.tenant, effect.request, effect.rejected_token)
                    )
        except Exception as exc:
            flight.error = exc
            raise
        except BaseException:
            flight.abandoned = True  # cancelled: a waiter takes over
            raise
        finally:
            del self._flights[key]
            flight.done.set()
        return flight.state

    async def _emit(self, event: Event) -> None:
        for handler in self._hooks.handlers(event):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log_handler_error(event, handler)
