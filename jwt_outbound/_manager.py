"""AsyncTokenManager and TokenManager: thin I/O shells around the shared decision core."""

from __future__ import annotations

import functools
import inspect
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar, overload

import anyio
import httpx

from ._auth import TenantAuth
from ._client import AsyncTenantJWT, OutboundAsyncClient, OutboundClient, TenantJWT
from ._config import JWTConfig, is_coroutine_hook
from ._core import (
    _MISS,
    AcquireLease,
    Call,
    Core,
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
    origins,
    strip_foreign_credentials,
)
from ._events import (
    CredentialsExpiredEvent,
    Event,
    HookRegistry,
    LoginEvent,
    LogoutEvent,
    log_handler_error,
)
from ._exceptions import ConfigurationError
from ._state import TokenState, validate_tenant
from ._store import SQLTokenStore, TokenStore

__all__ = ["AsyncTokenManager", "TokenManager"]

H = TypeVar("H", bound=Callable[..., Any])
L = TypeVar("L")


class _Manager(Generic[L]):
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
        self._cache[tenant] = (state, time.monotonic())

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


class _BorrowedTransport(httpx.BaseTransport):
    """The manager's pool, lent to a per-request client: closing the client leaves it open."""

    def __init__(self, transport: httpx.BaseTransport) -> None:
        self._transport = transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._transport.handle_request(request)


class _AsyncBorrowedTransport(httpx.AsyncBaseTransport):
    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)


class AsyncTokenManager(_Manager[anyio.Lock]):
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
        self._shared = _AsyncBorrowedTransport(self._transport)
        self._token_client = httpx.AsyncClient(transport=self._shared, trust_env=False)

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
            lambda: self._client_options(_resolved(resolve_tenant), dict(options))
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
        while True:
            done, effect = advance(flow, value, error)
            if done:
                return effect
            value, error = None, None
            try:
                value = await self._perform_async(effect)
            except Exception as exc:
                error = exc

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
            return await self._token_client.send(_build(self._token_client, effect.options))
        if isinstance(effect, Emit):
            return await self._emit(effect.event)
        raise TypeError(f"no driver for {type(effect).__name__}")

    async def _ensure(self, effect: Ensure) -> TokenState | None:
        renewal = effect.rejected_token is not None
        if not renewal and (hit := self._cached(effect.tenant)) is not _MISS:
            return hit  # type: ignore[no-any-return]
        async with self._lock(effect.tenant, anyio.Lock):
            # Whoever held the lock may have just renewed the token for us.
            if not renewal and (hit := self._cached(effect.tenant)) is not _MISS:
                return hit  # type: ignore[no-any-return]
            state: TokenState | None = await self._drive(
                self._core.ensure(effect.tenant, effect.request, effect.rejected_token)
            )
            return state

    async def _emit(self, event: Event) -> None:
        for handler in self._hooks.handlers(event):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log_handler_error(event, handler)


class TokenManager(_Manager[threading.Lock]):
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
        self._shared = _BorrowedTransport(self._transport)
        self._token_client = httpx.Client(transport=self._shared, trust_env=False)

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
            lambda: self._client_options(_resolved(resolve_tenant), dict(options))
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
        while True:
            done, effect = advance(flow, value, error)
            if done:
                return effect
            value, error = None, None
            try:
                value = self._perform_sync(effect)
            except Exception as exc:
                error = exc

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
            return self._token_client.send(_build(self._token_client, effect.options))
        if isinstance(effect, Emit):
            return self._emit(effect.event)
        raise TypeError(f"no driver for {type(effect).__name__}")

    def _ensure(self, effect: Ensure) -> TokenState | None:
        renewal = effect.rejected_token is not None
        if not renewal and (hit := self._cached(effect.tenant)) is not _MISS:
            return hit  # type: ignore[no-any-return]
        with self._lock(effect.tenant, threading.Lock):
            # Whoever held the lock may have just renewed the token for us.
            if not renewal and (hit := self._cached(effect.tenant)) is not _MISS:
                return hit  # type: ignore[no-any-return]
            state: TokenState | None = self._drive(
                self._core.ensure(effect.tenant, effect.request, effect.rejected_token)
            )
            return state

    def _emit(self, event: Event) -> None:
        for handler in self._hooks.handlers(event):
            try:
                handler(event)
            except Exception:
                log_handler_error(event, handler)


@functools.lru_cache(maxsize=256)
def _parsed_base_url(base_url: str) -> httpx.URL:
    # httpx parses base_url on every client; middleware makes one client per request.
    url = httpx.URL(base_url)
    return url if url.raw_path.endswith(b"/") else url.copy_with(raw_path=url.raw_path + b"/")


def _resolved(resolve_tenant: Callable[[], str | None]) -> str | None:
    tenant = resolve_tenant()
    return None if tenant is None else validate_tenant(tenant)


def _build(client: httpx.Client | httpx.AsyncClient, options: dict[str, Any]) -> httpx.Request:
    try:
        return client.build_request(**options)
    except TypeError as exc:
        raise ConfigurationError(
            f"the token request options are not httpx request arguments: {exc}"
        ) from None
