"""A failing token endpoint is not expiry: state kept, a clear error, no secret in it."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

from jwt_outbound import (
    CredentialsExpiredError,
    Endpoint,
    JWTConfig,
    TokenEndpointError,
    TokenRejectedError,
)

from .conftest import CREDENTIALS
from .issuer import PASSWORD, Issuer

pytestmark = pytest.mark.anyio


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _expired_login(h: Any, issuer: Issuer) -> Any:
    issuer.token_ttl = -10
    state = await h.call("login", "acme", CREDENTIALS)
    issuer.token_ttl = 300
    return state


def _assert_no_secret(error: BaseException, *secrets: str | None) -> None:
    text = f"{error!s} {error!r}"
    for secret in secrets:
        if secret:
            assert secret not in text


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
async def test_server_errors_keep_the_state(
    make: Any, config: JWTConfig, issuer: Issuer, status: int
) -> None:
    h = make(config)
    before = await _expired_login(h, issuer)
    expired: list[Any] = []
    h.manager.on_expired(expired.append)
    issuer.failure = status

    with pytest.raises(TokenEndpointError) as caught:
        await h.get("acme", "/api/whoami")

    assert type(caught.value) is TokenEndpointError
    assert caught.value.status_code == status
    assert caught.value.tenant == "acme"
    assert f"{status}" in str(caught.value)
    _assert_no_secret(caught.value, before.token, before.refresh_token)
    assert await h.call("state", "acme") == before
    assert expired == []
    assert issuer.api_calls == 0

    issuer.failure = None  # the endpoint comes back: the same refresh token still works
    assert (await h.get("acme", "/api/whoami")).status_code == 200
    assert issuer.reuse == 0


async def test_unreachable_endpoint_keeps_the_state(
    make: Any, base_url: str, issuer: Issuer
) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    h = make(
        JWTConfig(
            login=Endpoint(f"{base_url}/auth"), refresh=Endpoint(f"{dead}/auth/refresh"), leeway=0
        )
    )
    before = await _expired_login(h, issuer)

    with pytest.raises(TokenEndpointError, match="ConnectError") as caught:
        await h.get("acme", "/api/whoami")

    assert caught.value.status_code is None
    assert caught.value.action == "refresh"
    assert await h.call("state", "acme") == before


async def test_timeout_keeps_the_state(make: Any, base_url: str, issuer: Issuer) -> None:
    h = make(
        JWTConfig(
            login=Endpoint(f"{base_url}/auth"),
            refresh=Endpoint(f"{base_url}/auth/refresh", timeout=0.2),
            leeway=0,
        )
    )
    before = await _expired_login(h, issuer)
    issuer.delay = 1.0

    with pytest.raises(TokenEndpointError, match="Timeout"):
        await h.get("acme", "/api/whoami")

    assert await h.call("state", "acme") == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>oops</html>", "not a JSON object"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"nothing": "here"}', "no 'token' or 'access_token'"),
        (b'{"access_token": "opaque", "expires_in": "soon"}', "non-numeric 'expires_in'"),
        (b'{"token": 42}', "no 'token' or 'access_token'"),
    ],
)
async def test_malformed_token_response_keeps_the_state(
    make: Any, config: JWTConfig, issuer: Issuer, body: bytes, message: str
) -> None:
    h = make(config)
    before = await _expired_login(h, issuer)
    issuer.body = body

    with pytest.raises(TokenEndpointError, match=message):
        await h.get("acme", "/api/whoami")

    assert await h.call("state", "acme") == before


async def test_bad_credentials_are_rejected_and_store_nothing(
    make: Any, base_url: str, issuer: Issuer
) -> None:
    h = make(JWTConfig(login=Endpoint(f"{base_url}/auth", method="GET")))

    with pytest.raises(TokenRejectedError) as caught:
        await h.call("login", "acme", {"username": "acme", "password": "hunter2-wrong"})

    assert caught.value.status_code == 401
    assert "invalid_grant" in str(caught.value)
    _assert_no_secret(caught.value, "hunter2-wrong")  # a GET login carries them in the URL
    assert await h.call("state", "acme") is None


async def test_provider_logs_in_again_when_refresh_is_impossible(
    make: Any, config: JWTConfig, issuer: Issuer
) -> None:
    h = make(config, credentials_provider=lambda tenant: {"username": tenant, "password": PASSWORD})
    issuer.token_ttl = issuer.refresh_ttl = -10
    await h.call("login", "acme", CREDENTIALS)
    issuer.token_ttl = issuer.refresh_ttl = 300
    expired: list[Any] = []
    h.manager.on_expired(expired.append)

    assert (await h.get("acme", "/api/whoami")).status_code == 200

    assert issuer.login_calls == 2
    assert issuer.refresh_calls == 0
    assert expired == []


async def test_provider_rejected_too_expires(make: Any, config: JWTConfig, issuer: Issuer) -> None:
    h = make(config, credentials_provider=lambda tenant: {"username": tenant, "password": "wrong"})
    issuer.token_ttl = issuer.refresh_ttl = -10
    await h.call("login", "acme", CREDENTIALS)
    expired: list[Any] = []
    h.manager.on_expired(expired.append)

    with pytest.raises(CredentialsExpiredError):
        await h.get("acme", "/api/whoami")

    assert len(expired) == 1
    assert isinstance(expired[0].error, TokenRejectedError)
    assert await h.call("state", "acme") is None


async def test_401_from_the_api_renews_once_and_retries(
    make: Any, config: JWTConfig, issuer: Issuer
) -> None:
    h = make(config)
    state = await h.call("login", "acme", CREDENTIALS)
    issuer.rejected_tokens.add(state.token)  # revoked server-side, still unexpired here

    response = await h.request("acme", "POST", "/api/whoami", json={"a": 1})

    assert response.status_code == 200
    assert issuer.refresh_calls == 1
    assert issuer.api_calls == 2
    assert (await h.call("state", "acme")).token != state.token


async def test_401_with_nothing_to_renew_returns_the_response(
    make: Any, base_url: str, issuer: Issuer
) -> None:
    h = make(JWTConfig(login=Endpoint(f"{base_url}/auth")))
    state = await h.call("login", "acme", CREDENTIALS)
    issuer.rejected_tokens.add(state.token)

    response = await h.get("acme", "/api/whoami")

    assert response.status_code == 401
    assert issuer.api_calls == 1
    assert await h.call("state", "acme") == state  # a 401 alone logs nobody out


async def test_raising_handler_is_logged_and_the_flow_goes_on(
    make: Any, config: JWTConfig, caplog: pytest.LogCaptureFixture
) -> None:
    h = make(config)

    def broken(event: Any) -> None:
        raise RuntimeError("handler bug")

    h.manager.on("jwt:login", broken)
    with caplog.at_level(logging.ERROR, logger="jwt_outbound"):
        state = await h.call("login", "acme", CREDENTIALS)

    assert await h.call("state", "acme") == state
    assert any(
        "jwt:login handler" in r.getMessage() and "acme" in r.getMessage() for r in caplog.records
    )
    assert all(state.token not in r.getMessage() for r in caplog.records)


async def test_a_trickling_token_endpoint_is_cut_off_at_its_timeout(
    base_url: str, issuer: Issuer
) -> None:
    import time

    from jwt_outbound import AsyncTokenManager, MemoryTokenStore

    config = JWTConfig(
        login=Endpoint(f"{base_url}/auth"),
        refresh=Endpoint(f"{base_url}/auth/refresh", timeout=0.3),
        leeway=0,
    )
    async with AsyncTokenManager(config, store=MemoryTokenStore()) as manager:
        issuer.token_ttl = -10
        before = await manager.login("acme", CREDENTIALS)
        issuer.trickle = 0.05  # each byte within the read timeout, the whole far beyond it
        started = time.monotonic()
        with pytest.raises(TokenEndpointError, match="ReadTimeout"):
            await manager.refresh("acme")
        elapsed = time.monotonic() - started
        assert await manager.state("acme") == before

    assert elapsed < 0.8  # the body alone would take 27 x 0.05 = 1.35 s
