"""TokenState and the pure expiry rules. No I/O here: the clock is always passed in."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ._exceptions import InvalidTenantError, TokenEndpointError

__all__ = [
    "TokenState",
    "credentials_expired",
    "refresh_usable",
    "state_from_mapping",
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


# What a map hook may return, in the original's camelCase too; other keys go to ``extra``.
_STATE_KEYS = {
    "token": "token",
    "token_exp": "token_exp",
    "tokenExp": "token_exp",
    "refresh_token": "refresh_token",
    "refreshToken": "refresh_token",
    "refresh_token_exp": "refresh_token_exp",
    "refreshTokenExp": "refresh_token_exp",
    "date": "date",
}


def state_from_mapping(
    tenant: str, mapped: Mapping[str, Any], *, previous: TokenState | None, now: float
) -> TokenState:
    """The state a ``map`` hook's result describes; a refresh keeps the refresh token it used
    when the result names none. Raises ``TokenEndpointError`` for what is not a token state."""
    if not isinstance(mapped, Mapping):
        raise TokenEndpointError(
            f"map hook returned {type(mapped).__name__}, not a mapping", tenant=tenant
        )
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in mapped.items():
        if key in _STATE_KEYS:
            fields[_STATE_KEYS[key]] = value
        else:
            extra[key] = value
    token = fields.get("token")
    if not isinstance(token, str) or not token:
        raise TokenEndpointError("the token response mapped to no 'token' string", tenant=tenant)
    if previous is not None and "refresh_token" not in fields:
        fields["refresh_token"] = previous.refresh_token
        fields.setdefault("refresh_token_exp", previous.refresh_token_exp)
    refresh_token = fields.get("refresh_token")
    if refresh_token is not None and not isinstance(refresh_token, str):
        raise TokenEndpointError("the mapped 'refresh_token' is not a string", tenant=tenant)
    return TokenState(
        tenant=tenant,
        token=token,
        token_exp=_timestamp(fields.get("token_exp"), "token_exp", tenant),
        refresh_token=refresh_token or None,
        refresh_token_exp=_timestamp(fields.get("refresh_token_exp"), "refresh_token_exp", tenant),
        date=_timestamp(fields.get("date"), "date", tenant) or int(now),
        extra=MappingProxyType(extra),
        version=(previous.version + 1) if previous is not None else 1,
    )


def _timestamp(value: Any, name: str, tenant: str) -> int | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise TokenEndpointError(
            f"the mapped {name!r} is not Unix seconds", tenant=tenant
        ) from None
