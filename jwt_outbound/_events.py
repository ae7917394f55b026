"""Event objects and the registry of application hooks."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from ._config import is_coroutine_hook
from ._exceptions import ConfigurationError

if TYPE_CHECKING:
    import httpx

    from ._state import TokenState

__all__ = ["CredentialsExpiredEvent", "Event", "HookRegistry", "LoginEvent", "LogoutEvent"]

logger = logging.getLogger("jwt_outbound")


@dataclasses.dataclass(frozen=True, slots=True)
class LoginEvent:
    """A new token was stored for ``tenant``: after ``login`` (``action="login"``) and after
    every refresh (``action="refresh"``)."""

    alias: ClassVar[str] = "jwt:login"
    tenant: str
    state: TokenState
    response: httpx.Response = dataclasses.field(repr=False)
    decoded_token: dict[str, Any] | None = dataclasses.field(repr=False)
    action: Literal["login", "refresh"] = "login"

    @property
    def token(self) -> str:
        return self.state.token

    @property
    def refresh_token(self) -> str | None:
        return self.state.refresh_token


@dataclasses.dataclass(frozen=True, slots=True)
class LogoutEvent:
    """``tenant`` is being logged out; emitted before its state is deleted."""

    alias: ClassVar[str] = "jwt:logout"
    tenant: str
    state: TokenState


@dataclasses.dataclass(frozen=True, slots=True)
class CredentialsExpiredEvent:
    """The tenant's credentials expired and could not be renewed; ``request`` (if any) is about
    to be rejected with ``error`` and the tenant logged out."""

    alias: ClassVar[str] = "jwt:expired"
    tenant: str
    request: httpx.Request | None
    error: Exception


Event = LoginEvent | LogoutEvent | CredentialsExpiredEvent
Handler = Callable[[Any], Any]
H = TypeVar("H", bound=Handler)
_EVENTS: dict[str, type[Any]] = {
    cls.alias: cls for cls in (LoginEvent, LogoutEvent, CredentialsExpiredEvent)
}


class HookRegistry:
    """Handlers per event class. ``sync_only`` refuses coroutine handlers (the sync manager)."""

    def __init__(self, *, sync_only: bool) -> None:
        self._sync_only = sync_only
        self._handlers: dict[type[Any], list[Handler]] = {cls: [] for cls in _EVENTS.values()}

    def add(self, event: str | type[Any], handler: H) -> H:
        cls = _EVENTS.get(event) if isinstance(event, str) else event
        if cls not in self._handlers:
            raise ConfigurationError(
                f"unknown event {event!r}; use one of {sorted(_EVENTS)} or their classes"
            )
        if not callable(handler):
            raise ConfigurationError("an event handler must be callable")
        if self._sync_only and is_coroutine_hook(handler):
            raise ConfigurationError(
                "TokenManager runs handlers synchronously; use a plain function, "
                "or AsyncTokenManager for coroutine handlers"
            )
        self._handlers[cls].append(handler)
        return handler

    def remove(self, event: str | type[Any], handler: Handler) -> None:
        cls = _EVENTS.get(event) if isinstance(event, str) else event
        if cls in self._handlers and handler in self._handlers[cls]:
            self._handlers[cls].remove(handler)

    def handlers(self, event: Event) -> list[Handler]:
        return list(self._handlers[type(event)])


def log_handler_error(event: Event, handler: Handler) -> None:
    # Handler failures never break the token flow; they are the application's to fix.
    logger.exception(
        "jwt_outbound: %s handler %r failed for tenant %r",
        type(event).alias,
        getattr(handler, "__qualname__", handler),
        event.tenant,
    )
