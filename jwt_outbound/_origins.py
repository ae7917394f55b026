"""Where a token may go: origins, and the request hook that keeps credentials on theirs."""

from __future__ import annotations

import functools
from collections.abc import Iterable

import httpx

__all__ = ["CREDENTIAL_HEADERS", "Origin", "origin", "origins", "strip_foreign_credentials"]

Origin = tuple[str, str, int]
# request.extensions key: (origins the credentials may go to, header names the hook set)
CREDENTIAL_HEADERS = "jwt_outbound.credential_headers"


def origin(url: httpx.URL) -> Origin:
    port = url.port or (443 if url.scheme == "https" else 80)
    return (url.scheme, url.host, port)


def origins(urls: Iterable[str | httpx.URL]) -> frozenset[Origin]:
    return frozenset(_origin_of(str(url)) for url in urls)


@functools.lru_cache(maxsize=1024)
def _origin_of(url: str) -> Origin:
    # Middleware builds a client per request for the same few base URLs: parse each once.
    return origin(httpx.URL(url))


def strip_foreign_credentials(request: httpx.Request) -> None:
    """An httpx request hook: a redirect to an origin the token is not for loses the headers the
    authenticate hook set."""
    marker = request.extensions.get(CREDENTIAL_HEADERS)
    if marker is not None and origin(request.url) not in marker[0]:
        for name in marker[1]:
            request.headers.pop(name, None)
