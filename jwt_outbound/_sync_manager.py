"""TokenManager: the decision core driven with blocking I/O, for WSGI apps, scripts, threads."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from ._client import BorrowedTransport, OutboundClient, TenantJWT
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
from ._exceptions import ConfigurationError
from ._manager import Flight, Manager, build_request, holds_lease, logger, resolved
from ._origins import strip_foreign_credentials
from ._state import TokenState, validate_tenant
from ._store import TokenStore

__all__ = ["TokenManager"]


class TokenManager(Manager[threading.Lock]):
    """The synchronous twin of ``AsyncTokenManager`` for WSGI apps, scripts and threads."""

    def __init__(
        self,
        config: JWTConfig,
        *,
        store: TokenStore | None = None,
        credentials_provider: Callable[[str], Any] | None = None,
        clock: Callable[[], float] = time.time,
        state_ttl: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            config,
            store=store,
            credentials_provider=credentials_provider,
            clock=clock,
            state_ttl=state_ttl,
            sync=True,
        )
        self._owns_transport = transport is None
        self._transport = transport if transport is not None else httpx.HTTPTransport()
        self._shared = BorrowedTransport(self._transport)
        self._token_client = httpx.Client(transport=self._shared, trust_env=False)
        self._flights: dict[tuple[str, str | None], Flight] = {}

    def login(self, tenant: str, credentials: Any) -> TokenState:
        """Log ``tenant`` in with ``credentials``; store and return its new state."""
        tenant = validate_tenant(tenant)
        with self._lock(tenant, threading.Lock):
            state: TokenState = self._drive(self._core.login(tenant, credentials))
            return state

    def refresh(self, tenant: str) -> TokenState:
        """Refresh now. A failure raises and logs nothing out."""
        tenant = validate_tenant(tenant)
        with self._lock(tenant, threading.Lock):
            state: TokenState = self._drive(self._core.refresh(tenant))
            return state

    def logout(self, tenant: str) -> bool:
        """Emit ``LogoutEvent`` and delete the state; ``False`` if there was none."""
        tenant = validate_tenant(tenant)
        with self._lock(tenant, threading.Lock):
            removed: bool = self._drive(self._core.logout(tenant))
            return removed

    def state(self, tenant: str) -> TokenState | None:
        tenant = validate_tenant(tenant)
        state: TokenState | None = self._perform_sync(Load(tenant))
        return state

    def is_authenticated(self, tenant: str) -> bool:
        return self.state(tenant) is not None

    def client(self, tenant: str, **options: Any) -> OutboundClient:
        """An ``httpx.Client`` bound to ``tenant`` on the manager's shared pool.

        Takes ``httpx.Client`` arguments plus ``allowed_origins`` (default: ``base_url``'s).
        """
        return OutboundClient(**self._client_options(validate_tenant(tenant), options))

    def _deferred_client(
        self, resolve_tenant: Callable[[], str | None], options: dict[str, Any]
    ) -> OutboundClient:
        """A client built on first use, for the tenant ``resolve_tenant`` names then."""
        return OutboundClient.deferred(
            lambda: self._client_options(resolved(resolve_tenant), dict(options))
        )

    def _tenant_jwt(self, tenant: str) -> TenantJWT:
        return TenantJWT(self, tenant)

    _strip_hook = staticmethod(strip_foreign_credentials)

    def close(self) -> None:
        self._token_client.close()
        if self._owns_transport:
            self._transport.close()
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> TokenManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the sync driver ---------------------------------------------------------------------

    def _drive(self, flow: Flow) -> Any:
        value: Any = None
        error: BaseException | None = None
        leased: str | None = None
        while True:
            done, effect = advance(flow, value, error)
            if done:
                return effect
            value, error = None, None
            try:
                value = self._perform_sync(effect)
            except Exception as exc:
                error = exc
            except BaseException:
                if leased is not None:  # interrupted mid-refresh: let another worker go now
                    self._release_quietly(leased)
                raise
            else:
                leased = holds_lease(effect, value, leased)

    def _release_quietly(self, tenant: str) -> None:
        try:
            self.store.release_lease(tenant, owner=self._owner)
        except Exception:
            logger.warning("jwt_outbound: could not release the refresh lease of %r", tenant)

    def _perform_sync(self, effect: Any) -> Any:
        store = self.store
        # The per-request path first: a cached token and the authenticate hook.
        if isinstance(effect, Ensure):
            return self._ensure(effect)
        if isinstance(effect, Call):
            result = effect.hook(*effect.args)
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise ConfigurationError(
                    f"hook {getattr(effect.hook, '__qualname__', effect.hook)!r} returned an "
                    "awaitable; TokenManager needs plain functions (or use AsyncTokenManager)"
                )
            return result
        if isinstance(effect, Load):
            state = store.get(effect.tenant)
            self._remember(effect.tenant, state)
            return state
        if isinstance(effect, Save):
            saved = store.save(effect.state, expected_version=effect.expected_version)
            if saved:
                self._remember(effect.state.tenant, effect.state)
            return saved
        if isinstance(effect, Delete):
            self._cache.pop(effect.tenant, None)
            return store.delete(effect.tenant, expected_version=effect.expected_version)
        if isinstance(effect, AcquireLease):
            return store.acquire_lease(
                effect.tenant,
                version=effect.version,
                owner=self._owner,
                seconds=self.config.refresh_lease,
            )
        if isinstance(effect, ReleaseLease):
            return store.release_lease(effect.tenant, owner=self._owner)
        if isinstance(effect, Sleep):
            return time.sleep(effect.seconds)
        if isinstance(effect, Fetch):
            return self._token_client.send(build_request(self._token_client, effect.options))
        if isinstance(effect, Emit):
            return self._emit(effect.event)
        raise TypeError(f"no driver for {type(effect).__name__}")

    def _ensure(self, effect: Ensure) -> TokenState | None:
        renewal = effect.rejected_token is not None
        if not renewal and (hit := self._cached(effect.tenant)) is not MISS:
            return hit  # type: ignore[no-any-return]
        key = (effect.tenant, effect.rejected_token)
        while True:
            with self._locks_guard:
                flight = self._flights.get(key)
                if flight is None:
                    flight = self._flights[key] = Flight(threading.Event())
                    break
            # One thread renews; the others wait for its outcome, failures included: an
            # endpoint that is down is asked once, not once per waiting thread.
            flight.done.wait()
            if not flight.abandoned:
                return flight.outcome()
        try:
            with self._lock(effect.tenant, threading.Lock):
                # Whoever held the lock (a login, a refresh by hand) may have renewed it for us.
                if not renewal and (hit := self._cached(effect.tenant)) is not MISS:
                    flight.state = hit
                else:
                    flight.state = self._drive(
                        self._core.ensure(effect.tenant, effect.request, effect.rejected_token)
                    )
        except Exception as exc:
            flight.error = exc
            raise
        except BaseException:
            flight.abandoned = True
            raise
        finally:
            with self._locks_guard:
                del self._flights[key]
            flight.done.set()
        return flight.state

    def _emit(self, event: Event) -> None:
        for handler in self._hooks.handlers(event):
            try:
                handler(event)
            except Exception:
                log_handler_error(event, handler)
