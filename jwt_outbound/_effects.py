"""The effects a workflow yields, and one step of a workflow.

A workflow (``Core``'s generators) yields an effect and receives its result, or has its
exception thrown in; the sync and async drivers perform effects, the core decides.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from ._events import Event
    from ._state import TokenState

__all__ = [
    "AcquireLease",
    "Call",
    "Delete",
    "Effect",
    "Emit",
    "Ensure",
    "Fetch",
    "Flow",
    "Load",
    "ReleaseLease",
    "Save",
    "Send",
    "Sleep",
    "advance",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Load:
    tenant: str


@dataclasses.dataclass(frozen=True, slots=True)
class Save:
    state: TokenState
    expected_version: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class Delete:
    tenant: str
    expected_version: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class AcquireLease:
    tenant: str
    version: int


@dataclasses.dataclass(frozen=True, slots=True)
class ReleaseLease:
    tenant: str


@dataclasses.dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """Call a user hook; its result is awaited when it is awaitable (async driver only)."""

    hook: Callable[..., Any]
    args: tuple[Any, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Fetch:
    """Send one token-endpoint request built from ``options``; result: the read response."""

    options: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Emit:
    event: Event


@dataclasses.dataclass(frozen=True, slots=True)
class Ensure:
    """A usable state for ``tenant``, or ``None``; the driver serves it from its cache or runs
    ``Core.ensure`` under the tenant's lock."""

    tenant: str
    request: httpx.Request | None = None
    rejected_token: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Send:
    """Send the outbound request (only in ``Core.request``); result: its response."""

    request: httpx.Request


Effect = (
    Load | Save | Delete | AcquireLease | ReleaseLease | Sleep | Call | Fetch | Emit | Ensure | Send
)
Flow = Generator[Effect, Any, Any]


def advance(flow: Flow, value: Any, error: BaseException | None) -> tuple[bool, Any]:
    """One step of a flow: ``(False, effect)`` to perform, or ``(True, result)`` when done."""
    try:
        effect = flow.throw(error) if error is not None else flow.send(value)
    except StopIteration as stop:
        return True, stop.value
    return False, effect
