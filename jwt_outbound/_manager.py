"""The managers' shared part: configuration, hooks, the cache of states, tenant locks, clients.

``AsyncTokenManager`` (``_async_manager.py``) and ``TokenManager`` (``_sync_manager.py``) are
thin I/O drivers around the one decision core in ``_core.py``.
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar, overload

import httpx

from ._auth import TenantAuth
from ._config import JWTConfig, is_coroutine_hook
from ._core import Core
from ._effects import AcquireLease, Delete, ReleaseLease, Save
from ._events import CredentialsExpiredEvent, HookRegistry, LoginEvent, LogoutEvent
from ._exceptions import ConfigurationError
from ._origins import origins
from ._state import TokenState, validate_tenant
from ._store import SQLTokenStore, TokenStore

__all__ = [
    "CACHE_LIMIT",
    "Flight",
    "Manager",
    "build_request",
    "holds_lease",
    "logger",
    "resolved",
    "total_timeout",
]

logger = logging.getLogger("jwt_outbound")

CACHE_LIMIT = 10_000  # tenants whose state a manager keeps in memory

H = TypeVar("H", bound=Callable[..., Any])
L = TypeVar("L")


class Manager(Generic[L]):
    """What both shells share: configuration, the cache of states, hooks and tenant locks."""

    _shared: httpx.BaseTransport | httpx.AsyncBaseTransport  # the pool every client borrows

    def __init__(
        self,
        config: JWTConfig,
        *,
        store: TokenStore | None = None,
        credentials_provider: Callable[[str], Any] | None = None,
        clock: Callable[[], float] = time.time,
        state_ttl: float = 5.0,
        sync: bool,
    ) -> None:
        if not isinstance(config, JWTConfig):
            raise ConfigurationError("the first argument must be a JWTConfig")
        if credentials_provider is not None and not callable(credentials_provider):
            raise ConfigurationError("credentials_provider must be callable")
        if state_ttl < 0:
            raise ConfigurationError("state_ttl must be zero or more seconds")
        if sync:
            hooks = [*config.hooks(), *([credentials_provider] if credentials_provider else [])]
            if any(is_coroutine_hook(hook) for hook in hooks):
                raise ConfigurationError(
                    "TokenManager calls hooks synchronously; a hook or the credentials provider "
                    "is a coroutine function: use AsyncTokenManager or plain functions"
                )
        self.config = config
        self._owns_store = store is None
        # The default: a SQLite file, or $JWT_OUTBOUND_DATABASE_URL (see default_database_url).
        self.store: TokenStore = store if store is not None else SQLTokenStore()
        self._core = Core(
            config, clock=clock, credentials_provider=credentials_provider, state_ttl=state_ttl
        )
        self._hooks = HookRegistry(sync_only=sync)
        # tenant -> (state or None, monotonic time it was read): the steady state costs no I/O.
        self._cache: dict[str, tuple[TokenState | None, float]] = {}
        self._locks: weakref.WeakValueDictionary[str, L] = weakref.WeakValueDictionary()
        self._locks_guard = threading.Lock()
        # Identifies this manager's refresh leases in the shared store.
        self._owner = uuid.uuid4().hex

    def __repr__(self) -> str:
        return f"{type(self).__name__}(store={self.store!r}, tenants_cached={len(self._cache)})"

    # -- events ------------------------------------------------------------------------------

    @overload
    def on(self, event: str | type[Any], handler: H) -> H: ...
    @overload
    def on(self, event: str | type[Any], handler: None = None) -> Callable[[H], H]: ...
    def on(self, event: str | type[Any], handler: H | None = None) -> H | Callable[[H], H]:
        """Register ``handler`` for ``"jwt:login"`` / ``LoginEvent`` etc.; a decorator without it."""
        if handler is None:
            return lambda fn: self._hooks.add(event, fn)
        return self._hooks.add(event, handler)

    def off(self, event: str | type[Any], handler: Callable[..., Any]) -> None:
        self._hooks.remove(event, handler)

    def on_login(self, handler: H) -> H:
        return self._hooks.add(LoginEvent, handler)

    def on_logout(self, handler: H) -> H:
        return self._hooks.add(LogoutEvent, handler)

    def on_expired(self, handler: H) -> H:
        return self._hooks.add(CredentialsExpiredEvent, handler)

    # -- httpx -------------------------------------------------------------------------------

    def auth(
        self, tenant: str, *, allowed_origins: Iterable[str | httpx.URL] | None = None
    ) -> TenantAuth:
        """An ``httpx.Auth`` for ``tenant``; the token goes only to ``allowed_origins`` (default:
        wherever the client sends it; ``client()`` narrows this to its ``base_url``)."""
        tenant = validate_tenant(tenant)
        allowed = origins(allowed_origins) if allowed_origins is not None else None
        return TenantAuth(self, tenant, allowed)  # type: ignore[arg-type]

    def _client_options(self, tenant: str | None, options: dict[str, Any]) -> dict[str, Any]:
        """Arguments of a tenant's client; with no tenant, a client that attaches no token."""
        allowed_origins = options.pop("allowed_origins", None)
        base_url = options.get("base_url")
        if base_url:
            if allowed_origins is None:
                allowed_origins = [base_url]
            if isinstance(base_url, str):
                options["base_url"] = _parsed_base_url(base_url)
        if tenant is not None:
            options["auth"] = self.auth(tenant, allowed_origins=allowed_origins)
            options["jwt"] = self._tenant_jwt(tenant)
            if self.config.authenticate is not None:
                # httpx drops Authorization on a redirect to another origin, but not the
                # headers a custom authenticate hook sets: this request hook does.
                hooks = dict(options.get("event_hooks") or {})
                hooks["request"] = [*hooks.get("request", ()), self._strip_hook]
                options["event_hooks"] = hooks
        # Proxies belong on the manager's transport; reading them from the environment here
        # would open a new pool per client.
        options.setdefault("trust_env", False)
        options.setdefault("transport", self._shared)
        return options

    def _tenant_jwt(self, tenant: str) -> Any:
        raise NotImplementedError

    _strip_hook: Callable[[httpx.Request], Any]

    # -- shared by both drivers --------------------------------------------------------------

    def _remember(self, tenant: str, state: TokenState | None) -> None:
        # Tenant ids can come from requests: keep the most recently read ones only.
        self._cache.pop(tenant, None)
        self._cache[tenant] = (state, time.monotonic())
        if len(self._cache) > CACHE_LIMIT:
            del self._cache[next(iter(self._cache))]

    def _cached(self, tenant: str) -> Any:
        entry = self._cache.get(tenant)
        age = time.monotonic() - entry[1] if entry is not None else 0.0
        return self._core.cached(entry, age)

    def _lock(self, tenant: str, factory: Callable[[], L]) -> L:
        with self._locks_guard:
            lock = self._locks.get(tenant)
            if lock is None:
                lock = self._locks[tenant] = factory()
            return lock


class Flight:
    """One renewal in progress in this process, and its outcome for the callers waiting on
    ``done`` (an ``anyio.Event`` or a ``threading.Event``)."""

    __slots__ = ("abandoned", "done", "error", "state")

    def __init__(self, done: Any) -> None:
        self.done = done
        self.state: TokenState | None = None
        self.error: Exception | None = None
        self.abandoned = False  # the renewer was cancelled: a waiter takes over

    def outcome(self) -> TokenState | None:
        if self.error is None:
            return self.state
        # Each waiter raises its own copy: one exception object raised in many tasks or
        # threads would collect all their tracebacks.
        try:
            error = copy.copy(self.error)
        except Exception:
            error = self.error
        error.__cause__ = self.error.__cause__
        raise error


@functools.lru_cache(maxsize=256)
def _parsed_base_url(base_url: str) -> httpx.URL:
    # httpx parses base_url on every client; middleware makes one client per request.
    url = httpx.URL(base_url)
    return url if url.raw_path.endswith(b"/") else url.copy_with(raw_path=url.raw_path + b"/")


def resolved(resolve_tenant: Callable[[], str | None]) -> str | None:
    tenant = resolve_tenant()
    return None if tenant is None else validate_tenant(tenant)


def holds_lease(effect: Any, value: Any, leased: str | None) -> str | None:
    """The tenant whose refresh lease a flow holds once ``effect`` returned ``value``."""
    if isinstance(effect, AcquireLease):
        return effect.tenant if value else leased
    if isinstance(effect, (Save, Delete, ReleaseLease)):
        return None  # saving or deleting the row clears its lease
    return leased


def total_timeout(request: httpx.Request) -> float:
    """The longest of a request's httpx timeouts, as a bound on the whole exchange."""
    timeouts = [t for t in (request.extensions.get("timeout") or {}).values() if t is not None]
    return max(timeouts, default=float("inf"))


def build_request(
    client: httpx.Client | httpx.AsyncClient, options: dict[str, Any]
) -> httpx.Request:
    try:
        return client.build_request(**options)
    except TypeError as exc:
        raise ConfigurationError(
            f"the token request options are not httpx request arguments: {exc}"
        ) from None
