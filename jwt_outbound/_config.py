"""JWTConfig, Endpoint, the tenant view given to hooks, and the default hooks."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import httpx
import jwt

from ._exceptions import ConfigurationError, TokenEndpointError

if TYPE_CHECKING:
    from ._state import TokenState

__all__ = [
    "AuthenticateHook",
    "ConfigureHook",
    "Endpoint",
    "JWTConfig",
    "MapHook",
    "TenantView",
    "default_authenticate",
    "default_login_configure",
    "default_map",
    "default_refresh_configure",
]

RequestOptions = dict[str, Any]
#: ``configure(credentials_or_refresh_token, request_options, manager_view)``: change the
#: options in place, or return a new dict. May be a coroutine function under the async manager.
ConfigureHook = Callable[
    [Any, RequestOptions, "TenantView"], RequestOptions | Awaitable[Any] | None
]
#: ``map(response, request_options, manager_view)`` -> mapping with ``token`` and optionally
#: ``refresh_token``, ``token_exp``, ``refresh_token_exp``; other keys go to ``TokenState.extra``.
MapHook = Callable[
    [httpx.Response, RequestOptions, "TenantView"],
    Mapping[str, Any] | Awaitable[Mapping[str, Any]],
]
#: ``authenticate(request, manager_view)`` puts the token on the outgoing ``httpx.Request``.
AuthenticateHook = Callable[[httpx.Request, "TenantView"], Awaitable[None] | None]


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
# httpx.Client.build_request arguments an Endpoint may set statically.
_REQUEST_ARGS = frozenset(
    {"content", "data", "files", "json", "cookies", "extensions", "params", "headers", "timeout"}
)


@dataclasses.dataclass(frozen=True, slots=True)
class TenantView:
    """What hooks see of the manager for one tenant (the original's ``jwt``)."""

    tenant: str
    state: TokenState | None
    now: float
    decode_options: Mapping[str, Any] = dataclasses.field(default_factory=_empty)

    @property
    def token(self) -> str | None:
        return self.state.token if self.state is not None else None

    def decode(self, token: str) -> dict[str, Any]:
        """Read a JWT's claims without verifying its signature (PyJWT ``options`` apply)."""
        options = {"verify_signature": False, **self.decode_options}
        claims: dict[str, Any] = jwt.decode(token, options=options)  # type: ignore[arg-type]
        return claims

    def __repr__(self) -> str:
        return f"TenantView(tenant={self.tenant!r}, state={self.state!r})"


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """One token-endpoint call: where it goes, its static httpx options, and its hooks.

    ``options`` takes any other ``httpx`` request argument (``json``, ``data``, ``cookies``,
    ``extensions``, ...). ``configure`` shapes each request; ``map`` turns the response into state.
    """

    url: str | None = None
    _: dataclasses.KW_ONLY
    method: str = "POST"
    headers: Mapping[str, str] = dataclasses.field(default_factory=_empty)
    params: Mapping[str, Any] = dataclasses.field(default_factory=_empty)
    timeout: float = 10.0
    options: Mapping[str, Any] = dataclasses.field(default_factory=_empty)
    configure: ConfigureHook | None = None
    map: MapHook | None = None

    def __post_init__(self) -> None:
        method = self.method.upper()
        if method not in _METHODS:
            raise ConfigurationError(
                f"Endpoint.method must be one of {sorted(_METHODS)}, not {self.method!r}"
            )
        object.__setattr__(self, "method", method)
        if self.url is not None:
            url = httpx.URL(self.url)
            if url.scheme not in ("http", "https") or not url.host:
                raise ConfigurationError(
                    f"Endpoint.url must be an absolute http(s) URL, not {self.url!r}; "
                    "set the URL in the configure hook if it is only known later"
                )
        if not self.timeout > 0:
            raise ConfigurationError("Endpoint.timeout must be a positive number of seconds")
        unknown = set(self.options) - _REQUEST_ARGS
        if unknown:
            raise ConfigurationError(
                f"Endpoint.options has keys httpx requests do not take: {sorted(unknown)}; "
                f"use some of {sorted(_REQUEST_ARGS)}"
            )
        for name in ("configure", "map"):
            hook = getattr(self, name)
            if hook is not None and not callable(hook):
                raise ConfigurationError(f"Endpoint.{name} must be callable")

    def request_options(self) -> RequestOptions:
        """A fresh, mutable dict of request arguments for ``configure`` to shape."""
        options: RequestOptions = {key: _copy(value) for key, value in self.options.items()}
        options.update(
            method=self.method,
            url=self.url,
            headers=dict(self.headers),
            params=dict(self.params),
            timeout=self.timeout,
        )
        return options


@dataclasses.dataclass(frozen=True, slots=True)
class JWTConfig:
    """The whole token workflow of one manager.

    ``leeway``: a token is treated as expired this many seconds before its ``exp``.
    ``refresh_lease``: how long one worker may hold a tenant's refresh before another takes
    over; the refresh endpoint's timeout must be shorter.
    """

    login: Endpoint
    refresh: Endpoint | None = None
    _: dataclasses.KW_ONLY
    authenticate: AuthenticateHook | None = None
    decode_options: Mapping[str, Any] = dataclasses.field(default_factory=_empty)
    leeway: float = 60.0
    refresh_lease: float = 30.0

    def __post_init__(self) -> None:
        for name in ("login", "refresh"):
            endpoint = getattr(self, name)
            if endpoint is None:
                continue
            if not isinstance(endpoint, Endpoint):
                raise ConfigurationError(f"JWTConfig.{name} must be an Endpoint")
            if endpoint.url is None and endpoint.configure is None:
                raise ConfigurationError(
                    f"JWTConfig.{name} needs a url, or a configure hook that sets one"
                )
            if name == "refresh" and endpoint.timeout >= self.refresh_lease:
                raise ConfigurationError(
                    f"JWTConfig.{name}.timeout ({endpoint.timeout}s) must be shorter than "
                    f"refresh_lease ({self.refresh_lease}s), or two workers could refresh at once"
                )
        if self.leeway < 0:
            raise ConfigurationError("JWTConfig.leeway must be zero or more seconds")
        if self.authenticate is not None and not callable(self.authenticate):
            raise ConfigurationError("JWTConfig.authenticate must be callable")

    def hooks(self) -> list[Callable[..., Any]]:
        """Every user hook, so that a sync manager can refuse coroutine functions up front."""
        found: list[Callable[..., Any]] = []
        for endpoint in (self.login, self.refresh):
            if endpoint is not None:
                found += [h for h in (endpoint.configure, endpoint.map) if h is not None]
        if self.authenticate is not None:
            found.append(self.authenticate)
        return found


def _copy(value: Any) -> Any:
    # Static options are shared by every call; hooks mutate their own copy.
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def default_login_configure(
    credentials: Any, request_options: RequestOptions, view: TenantView
) -> None:
    """Credentials go in the query string for GET, in a JSON body otherwise."""
    if request_options.get("method", "GET").upper() == "GET":
        if not isinstance(credentials, Mapping):
            raise ConfigurationError(
                "credentials for a GET login must be a mapping; give login a configure hook",
                tenant=view.tenant,
            )
        request_options.setdefault("params", {}).update(credentials)
    else:
        request_options["json"] = credentials


def default_refresh_configure(
    refresh_token: str, request_options: RequestOptions, view: TenantView
) -> None:
    """POST ``{"refresh_token": ...}``, as the original does."""
    request_options["json"] = {"refresh_token": refresh_token}


def default_authenticate(request: httpx.Request, view: TenantView) -> None:
    request.headers["Authorization"] = f"Bearer {view.token}"


def default_map(
    response: httpx.Response, request_options: RequestOptions, view: TenantView
) -> dict[str, Any]:
    """Understand ``{"token", "refresh_token"}`` with JWT ``exp`` claims (the original) and
    RFC 6749 ``{"access_token", "refresh_token", "expires_in"}`` with opaque tokens."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TokenEndpointError(
            f"token endpoint answered {response.status_code} with a body that is not a JSON object",
            tenant=view.tenant,
            status_code=response.status_code,
        )
    body = dict(body)
    token = body.pop("token", None) or body.pop("access_token", None)
    body.pop("access_token", None)
    if not isinstance(token, str) or not token:
        raise TokenEndpointError(
            "token response has no 'token' or 'access_token' string",
            tenant=view.tenant,
            status_code=response.status_code,
        )
    refresh_token = body.pop("refresh_token", None)
    expires_in = _seconds(body.pop("expires_in", None), "expires_in", view)
    refresh_expires_in = _seconds(body.pop("refresh_expires_in", None), "refresh_expires_in", view)
    mapped: dict[str, Any] = dict(body)
    mapped["token"] = token
    # An explicit lifetime from the server wins over a claim read without verification.
    mapped["token_exp"] = (
        int(view.now + expires_in) if expires_in is not None else _exp_claim(token, view)
    )
    # No refresh token in a refresh response: keep the one held (RFC 6749 section 6 allows it).
    if isinstance(refresh_token, str) and refresh_token:
        mapped["refresh_token"] = refresh_token
        mapped["refresh_token_exp"] = (
            int(view.now + refresh_expires_in)
            if refresh_expires_in is not None
            else _exp_claim(refresh_token, view)
        )
    return mapped


def _seconds(value: Any, name: str, view: TenantView) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise TokenEndpointError(
            f"token response has a non-numeric {name!r}", tenant=view.tenant
        ) from None
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise TokenEndpointError(f"token response has a non-finite {name!r}", tenant=view.tenant)
    return seconds


def _exp_claim(token: str, view: TenantView) -> int | None:
    """The ``exp`` claim of a JWT; ``None`` for an opaque token or a JWT without one."""
    try:
        claims = view.decode(token)
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        return int(exp)
    return None


def is_coroutine_hook(hook: Callable[..., Any]) -> bool:
    target = getattr(hook, "__call__", None) if not inspect.isroutine(hook) else hook  # noqa: B004
    return inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(target)
