"""The decision core, shared by the sync and async managers.

Every workflow is a generator that yields *effects* (read this row, call the token endpoint, emit
this event, ...) and receives their results, or has their exception thrown in. It does no I/O
itself, so the sync driver, the async driver and the tests without any I/O all run the same code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from ._config import (
    JWTConfig,
    TenantView,
    default_authenticate,
    default_login_configure,
    default_map,
    default_refresh_configure,
)
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
    Send,
    Sleep,
)
from ._events import CredentialsExpiredEvent, LoginEvent, LogoutEvent
from ._exceptions import (
    ConfigurationError,
    CredentialsExpiredError,
    StoreError,
    TokenEndpointError,
    TokenRejectedError,
)
from ._origins import CREDENTIAL_HEADERS, Origin, origin
from ._state import TokenState, refresh_usable, state_from_mapping, token_expired

__all__ = ["MISS", "Core"]


MISS: Any = object()
_CAS_TRIES = 5
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


class Core:
    """The token workflow for one manager: pure decisions over ``TokenState`` and the clock."""

    def __init__(
        self,
        config: JWTConfig,
        *,
        clock: Callable[[], float],
        credentials_provider: Callable[[str], Any] | None,
        state_ttl: float,
    ) -> None:
        self.config = config
        self.clock = clock
        self.provider = credentials_provider
        self.state_ttl = state_ttl

    # -- reading the cache ---------------------------------------------------------------------

    def cached(self, entry: tuple[TokenState | None, float] | None, age: float) -> Any:
        """The cached answer for a request when it is still good, else ``MISS``."""
        if entry is None or age > self.state_ttl:
            return MISS
        state = entry[0]
        if state is None:
            return MISS if self.provider is not None else None
        if token_expired(state, self.clock(), self.config.leeway):
            return MISS
        return state

    # -- one outbound request ------------------------------------------------------------------

    def request(
        self, tenant: str, request: httpx.Request, allowed: frozenset[Origin] | None
    ) -> Flow:
        if request.extensions.get("authenticate") is False or (
            allowed is not None and origin(request.url) not in allowed
        ):
            yield Send(request)
            return
        state = yield Ensure(tenant, request)
        if state is None:
            yield Send(request)
            return
        yield from self._authenticate(request, state, allowed)
        response = yield Send(request)
        if not _should_retry(request, response):
            return
        renewed = yield Ensure(tenant, request, rejected_token=state.token)
        if renewed is None or renewed.token == state.token:
            return
        yield from self._authenticate(request, renewed, allowed)
        yield Send(request)

    def _authenticate(
        self, request: httpx.Request, state: TokenState, allowed: frozenset[Origin] | None
    ) -> Flow:
        hook = self.config.authenticate or default_authenticate
        before = set(request.headers.raw)
        yield Call(hook, (request, self.view(state.tenant, state)))
        # Redirects skip the auth flow and keep every header but Authorization: remember what
        # the hook set so that the clients' request hook can drop it on another origin.
        added = [
            key.decode("latin-1")
            for key, value in request.headers.raw
            if (key, value) not in before
        ]
        request.extensions[CREDENTIAL_HEADERS] = (
            allowed or frozenset({origin(request.url)}),
            added,
        )

    # -- making sure a request has a token -----------------------------------------------------

    def ensure(
        self, tenant: str, request: httpx.Request | None, rejected_token: str | None = None
    ) -> Flow:
        """Run under the tenant's in-process lock: returns a usable state or ``None``."""
        state: TokenState | None = yield Load(tenant)
        if state is None:
            return (yield from self._provider_login(tenant))
        forced = rejected_token is not None
        if forced and state.token != rejected_token:
            return state  # someone renewed it while we waited for the lock
        now = self.clock()
        if not forced and not token_expired(state, now, self.config.leeway):
            return state
        can_refresh = self._can_refresh(state, now)
        error: Exception
        if can_refresh or self.provider is not None:
            try:
                return (yield from self._leased(state, self._renew(state, can_refresh)))
            except _Unrenewable as exc:
                error = exc.error
        elif forced:
            return state  # a 401 that nothing here can fix: the caller keeps the response
        else:
            error = self._unrefreshable(state)
        yield Emit(CredentialsExpiredEvent(tenant=tenant, request=request, error=error))
        yield from self.logout(tenant, state=state, expected_version=state.version)
        if isinstance(error, CredentialsExpiredError):
            raise error
        raise CredentialsExpiredError(
            f"Unable to refresh credentials of tenant {tenant!r}: {error}", tenant=tenant
        ) from error

    def _renew(self, state: TokenState, can_refresh: bool) -> Flow:
        """Under the lease: refresh, else (or when refused) log in again through the provider;
        raises ``_Unrenewable`` when neither gives a token."""
        tenant = state.tenant
        error: Exception
        if can_refresh:
            try:
                return (yield from self._refresh_call(state))
            except TokenRejectedError as exc:
                error = exc
        else:
            error = self._unrefreshable(state)
        if self.provider is None:
            raise _Unrenewable(error)
        try:
            renewed = yield from self._provider_login(tenant)
        except TokenRejectedError as exc:
            raise _Unrenewable(exc) from None
        if renewed is None:
            raise _Unrenewable(error)
        return renewed

    def _can_refresh(self, state: TokenState, now: float) -> bool:
        return self.config.refresh is not None and refresh_usable(state, now)

    def _unrefreshable(self, state: TokenState) -> CredentialsExpiredError:
        """The error for a state that ``_can_refresh`` refused, saying why."""
        if self.config.refresh is None:
            why = "no refresh endpoint is configured"
        elif not state.refresh_token:
            why = "no refresh token is held"
        else:
            why = "the refresh token expired"
        return CredentialsExpiredError(
            f"Unable to refresh credentials of tenant {state.tenant!r}: {why}", tenant=state.tenant
        )

    def _provider_login(self, tenant: str) -> Flow:
        if self.provider is None:
            return None
        credentials = yield Call(self.provider, (tenant,))
        if credentials is None:
            return None
        return (yield from self.login(tenant, credentials))

    # -- login, refresh, logout ----------------------------------------------------------------

    def login(self, tenant: str, credentials: Any) -> Flow:
        endpoint = self.config.login
        view = self.view(tenant, None)
        options = yield from self._configure(
            endpoint.configure or default_login_configure,
            credentials,
            endpoint.request_options(),
            view,
        )
        response = yield from self._fetch(tenant, "login", options)
        mapped = yield Call(endpoint.map or default_map, (response, options, view))
        state = state_from_mapping(tenant, mapped, previous=None, now=self.clock())
        for _ in range(_CAS_TRIES):
            current: TokenState | None = yield Load(tenant)
            expected = current.version if current is not None else None
            state = state.replace(version=(expected or 0) + 1)
            if (yield Save(state, expected)):
                yield Emit(self._login_event(state, response, "login"))
                return state
        raise StoreError(
            f"could not store the login of tenant {tenant!r}: its row kept changing", tenant=tenant
        )

    def refresh(self, tenant: str) -> Flow:
        """A refresh asked for by hand: failures raise, nothing is logged out."""
        state: TokenState | None = yield Load(tenant)
        if state is None:
            raise CredentialsExpiredError(
                f"tenant {tenant!r} has no token state to refresh", tenant=tenant
            )
        if not self._can_refresh(state, self.clock()):
            raise self._unrefreshable(state)
        return (yield from self._leased(state, self._refresh_call(state)))

    def _leased(self, state: TokenState, work: Flow) -> Flow:
        """Run ``work`` (a refresh, a login) once for the whole fleet: take the row's lease, or
        wait for its holder's result."""
        tenant = state.tenant
        # Polls start fast and stay frequent: a refresh takes about one token-endpoint round
        # trip, and waiters should see its result within a fraction of that.
        waited, delay = 0.0, 0.01
        while True:
            if (yield AcquireLease(tenant, state.version)):
                try:
                    return (yield from work)
                except _Unrenewable:
                    raise  # the caller logs the tenant out: deleting the row ends the lease
                except Exception:
                    yield ReleaseLease(tenant)
                    raise
            latest: TokenState | None = yield Load(tenant)
            if latest is None:
                raise CredentialsExpiredError(
                    f"tenant {tenant!r} was logged out while another worker refreshed its token",
                    tenant=tenant,
                )
            if latest.version != state.version:
                return latest
            if waited > self.config.refresh_lease + 1:
                raise TokenEndpointError(
                    f"gave up after {waited:.1f}s waiting for another worker to refresh "
                    f"tenant {tenant!r}",
                    tenant=tenant,
                    action="refresh",
                )
            yield Sleep(delay)
            waited += delay
            delay = min(delay * 1.5, 0.1)

    def _refresh_call(self, state: TokenState) -> Flow:
        endpoint = self.config.refresh
        assert endpoint is not None
        tenant = state.tenant
        view = self.view(tenant, state)
        options = yield from self._configure(
            endpoint.configure or default_refresh_configure,
            state.refresh_token,
            endpoint.request_options(),
            view,
        )
        response = yield from self._fetch(tenant, "refresh", options)
        mapped = yield Call(endpoint.map or default_map, (response, options, view))
        renewed = state_from_mapping(tenant, mapped, previous=state, now=self.clock())
        if (yield Save(renewed, state.version)):
            yield Emit(self._login_event(renewed, response, "refresh"))
            return renewed
        # Someone wrote over the row meanwhile (a login, a logout): theirs wins.
        latest: TokenState | None = yield Load(tenant)
        if latest is None:
            raise CredentialsExpiredError(
                f"tenant {tenant!r} was logged out during its refresh", tenant=tenant
            )
        return latest

    def logout(
        self, tenant: str, *, state: TokenState | None = None, expected_version: int | None = None
    ) -> Flow:
        if state is None:
            state = yield Load(tenant)
            if state is None:
                return False
        yield Emit(LogoutEvent(tenant=tenant, state=state))
        return (yield Delete(tenant, expected_version))

    # -- pieces ------------------------------------------------------------------------------

    def view(self, tenant: str, state: TokenState | None) -> TenantView:
        return TenantView(tenant, state, self.clock(), self.config.decode_options)

    def _configure(
        self, hook: Callable[..., Any], value: Any, options: dict[str, Any], view: TenantView
    ) -> Flow:
        returned = yield Call(hook, (value, options, view))
        if isinstance(returned, dict):
            options = returned
        url = options.get("url")
        if not url or httpx.URL(str(url)).scheme not in ("http", "https"):
            raise ConfigurationError(
                "the token request has no absolute http(s) url; set Endpoint.url or set "
                "request_options['url'] in the configure hook",
                tenant=view.tenant,
            )
        return options

    def _fetch(self, tenant: str, action: str, options: dict[str, Any]) -> Flow:
        where = _where(options.get("url"))
        try:
            response: httpx.Response = yield Fetch(options)
        except httpx.HTTPError as exc:
            # httpx messages may quote the URL, and a GET login's URL carries credentials.
            raise TokenEndpointError(
                f"{action} request to {where} for tenant {tenant!r} failed: {type(exc).__name__}",
                tenant=tenant,
                action=action,
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            return response
        what = f"{status}{_error_code(response)}"
        if 400 <= status < 500 and status not in (408, 429):
            raise TokenRejectedError(
                f"token endpoint {where} rejected the {action} of tenant {tenant!r}: {what}",
                tenant=tenant,
                action=action,
                status_code=status,
            )
        raise TokenEndpointError(
            f"token endpoint {where} failed the {action} of tenant {tenant!r}: {what}",
            tenant=tenant,
            action=action,
            status_code=status,
        )

    def _login_event(self, state: TokenState, response: httpx.Response, action: Any) -> LoginEvent:
        try:
            decoded: dict[str, Any] | None = self.view(state.tenant, state).decode(state.token)
        except jwt.PyJWTError:
            decoded = None
        return LoginEvent(
            tenant=state.tenant,
            state=state,
            response=response,
            decoded_token=decoded,
            action=action,
        )


def _where(url: Any) -> str:
    # Origin and path only: query strings may carry credentials.
    try:
        parsed = httpx.URL(str(url))
    except Exception:
        return "<invalid url>"
    return str(parsed.copy_with(query=None, fragment=None, username=None, password=None))


def _error_code(response: httpx.Response) -> str:
    """The OAuth ``error`` code of a failed response, when it is a short plain code."""
    try:
        body = response.json()
    except ValueError:
        return ""
    code = body.get("error") if isinstance(body, dict) else None
    if isinstance(code, str) and _ERROR_CODE.fullmatch(code):
        return f" {code}"
    return ""


def _should_retry(request: httpx.Request, response: httpx.Response) -> bool:
    """One renewal and one retry on a 401 that blames the token, if the body can be re-sent."""
    if response.status_code != 401 or not isinstance(request.stream, httpx.ByteStream):
        return False
    challenge = response.headers.get("WWW-Authenticate", "")
    return "error=" not in challenge or "invalid_token" in challenge


class _Unrenewable(Exception):
    """Nothing could renew the token; ``error`` says why (raised inside the core only)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error
