"""TokenState and the pure expiry rules. No I/O here: the clock is always passed in."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ._exceptions import InvalidTenantError

__all__ = [
    "TokenState",
    "credentials_expired",
    "refresh_usable",
    "token_expired",
    "validate_tenant",
]


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclasses.dataclass(frozen=True, slots=True)
class TokenState:
    """One tenant's authentication state, as stored and shared by every worker.

    Times are Unix seconds. ``token_exp`` / ``refresh_token_exp`` of ``None`` mean the token
    never expires. ``date`` is when the login or refresh happened. ``extra`` holds whatever else
    the ``map`` hook returned. ``version`` grows by one on every write; writers compare and swap
    on it.
    """

    tenant: str
    token: str
    token_exp: int | None = None
    refresh_token: str | None = None
    refresh_token_exp: int | None = None
    date: int = 0
    extra: Mapping[str, Any] = dataclasses.field(default_factory=_empty)
    version: int = 1

    def __repr__(self) -> str:
        # Tokens never reach a repr; the extra values may hold secrets too, so only keys show.
        return (
            f"TokenState(tenant={self.tenant!r}, token=<hidden>, token_exp={self.token_exp!r}, "
            f"refresh_token={'<hidden>' if self.refresh_token else None}, "
            f"refresh_token_exp={self.refresh_token_exp!r}, date={self.date!r}, "
            f"extra_keys={sorted(self.extra)!r}, version={self.version!r})"
        )

    def replace(self, **changes: Any) -> TokenState:
        return dataclasses.replace(self, **changes)


def token_expired(state: TokenState, now: float, leeway: float) -> bool:
    """A token is treated as expired ``leeway`` seconds before its ``exp``."""
    return state.token_exp is not None and now >= state.token_exp - leeway


def refresh_usable(state: TokenState, now: float) -> bool:
    """A refresh token is usable when present and not past its own ``exp`` (no leeway)."""
    if not state.refresh_token:
        return False
    return state.refresh_token_exp is None or now < state.refresh_token_exp


def credentials_expired(state: TokenState, now: float, leeway: float) -> bool:
    """Nothing held can authenticate a request: the token expired and cannot be refreshed."""
    return token_expired(state, now, leeway) and not refresh_usable(state, now)


_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+\-]{0,127}")


def validate_tenant(tenant: object) -> str:
    """Tenant ids often come from request input: bound their length and characters."""
    if isinstance(tenant, str) and _TENANT.fullmatch(tenant):
        return tenant
    shown = repr(tenant)[:40]
    raise InvalidTenantError(
        f"invalid tenant id {shown}: use 1 to 128 letters, digits and ._:@+- "
        "starting with a letter or digit"
    )
