"""Ready-made tenant resolvers. Each takes the ASGI scope or the WSGI environ and returns the
tenant id or ``None``; the managers validate what they return."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "TenantResolver",
    "from_header",
    "from_path",
    "from_path_param",
    "from_state",
    "from_subdomain",
]

TenantResolver = Callable[[Mapping[str, Any]], "str | None"]


def _header(scope: Mapping[str, Any], name: str) -> str | None:
    if "headers" in scope:  # ASGI: raw latin-1 pairs, names lower-case
        raw = name.lower().encode("latin-1")
        for key, value in scope["headers"]:
            if key == raw:
                return str(value.decode("latin-1"))
        return None
    value = scope.get("HTTP_" + name.upper().replace("-", "_"))  # WSGI environ
    return value if isinstance(value, str) else None


def from_header(name: str = "X-Tenant-ID") -> TenantResolver:
    """The tenant named by a request header."""

    def resolve(scope: Mapping[str, Any]) -> str | None:
        return _header(scope, name) or None

    return resolve


def from_subdomain(base_domain: str) -> TenantResolver:
    """``acme`` for ``acme.example.com`` when ``base_domain`` is ``example.com``."""
    suffix = "." + base_domain.lower().lstrip(".")

    def resolve(scope: Mapping[str, Any]) -> str | None:
        host = (_header(scope, "Host") or "").split(":", 1)[0].lower()
        if not host.endswith(suffix):
            return None
        label = host[: -len(suffix)]
        return label if label and "." not in label else None

    return resolve


def from_path_param(name: str = "tenant") -> TenantResolver:
    """A path parameter of the matched route (ASGI; the client resolves its tenant on first
    use, after routing)."""

    def resolve(scope: Mapping[str, Any]) -> str | None:
        value = (scope.get("path_params") or {}).get(name)
        return str(value) if value is not None else None

    return resolve


def from_path(segment: int = 0) -> TenantResolver:
    """The ``segment``-th part of the request path (ASGI and WSGI): ``/acme/orders`` -> ``acme``."""

    def resolve(scope: Mapping[str, Any]) -> str | None:
        path = scope.get("path", scope.get("PATH_INFO", ""))
        parts = [part for part in str(path).split("/") if part]
        return parts[segment] if len(parts) > segment else None

    return resolve


def from_state(key: str = "tenant") -> TenantResolver:
    """A value an upstream middleware (authentication, say) left in ``scope["state"]`` (ASGI)
    or in the environ (WSGI)."""

    def resolve(scope: Mapping[str, Any]) -> str | None:
        holder = scope.get("state") if "headers" in scope else scope
        value = holder.get(key) if isinstance(holder, Mapping) else None
        return str(value) if value is not None else None

    return resolve
