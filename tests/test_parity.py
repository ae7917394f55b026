"""The original @klient/jwt's own test cases (SEED_BEHAVIOUR.md), against both managers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import jwt_outbound
from jwt_outbound import (
    ConfigurationError,
    CredentialsExpiredError,
    CredentialsExpiredEvent,
    Endpoint,
    JWTConfig,
    LoginEvent,
    LogoutEvent,
    MemoryTokenStore,
    TenantView,
    TokenRejectedError,
)

from .conftest import CREDENTIALS
from .issuer import PASSWORD, Issuer

pytestmark = pytest.mark.anyio


async def test_login_emits_event_with_state_and_authenticates(
    make: Any, config: JWTConfig, issuer: Issuer
) -> None:
    h = make(config)
    events: list[LoginEvent] = []
    h.manager.on("jwt:login", events.append)
    assert await h.call("is_authenticated", "acme") is False

    state = await h.call("login", "acme", CREDENTIALS)

    assert await h.call("is_authenticated", "acme") is True
    assert len(events) == 1
    assert events[0].state == state
    assert events[0].action == "login"
    assert events[0].decoded_token is not None
    assert events[0].decoded_token["sub"] == "acme"
    assert events[0].response.status_code == 200
    response = await h.get("acme", "/api/echo")
    assert response.json()["headers"]["authorization"] == f"Bearer {state.token}"
    assert issuer.login_calls == 1


async def test_expired_token_is_refreshed_before_the_request(
    make: Any, config: JWTConfig, issuer: Issuer
) -> None:
    h = make(config)
    issuer.token_ttl = -10  # every token the issuer signs is already expired
    before = await h.call("login", "acme", CREDENTIALS)
    issuer.token_ttl = 300
    refreshes: list[LoginEvent] = []
    h.manager.on_login(refreshes.append)

    response = await h.get("acme", "/api/whoami")

    assert response.status_code == 200
    assert response.json()["sub"] == "acme"
    after = await h.call("state", "acme")
    assert after.token != before.token
    assert after.refresh_token != before.refresh_token
    assert after.version == before.version + 1
    assert issuer.refresh_calls == 1
    assert [e.action for e in refreshes] == ["refresh"]
    # the refresh happened first, then the API call
    assert [r["path"] for r in issuer.token_requests] == ["/auth", "/auth/refresh"]


async def test_both_tokens_expired_rejects_without_sending(
    make: Any, config: JWTConfig, issuer: Issuer
) -> None:
    h = make(config)
    issuer.token_ttl = issuer.refresh_ttl = -10
    await h.call("login", "acme", CREDENTIALS)

    with pytest.raises(CredentialsExpiredError, match="Unable to refresh credentials"):
        await h.get("acme", "/api/whoami")

    assert issuer.api_calls == 0
    assert issuer.refresh_calls == 0
    assert await h.call("is_authenticated", "acme") is False


async def test_no_refresh_config_expired_emits_expired_once(
    make: Any, base_url: str, issuer: Issuer
) -> None:
    h = make(JWTConfig(login=Endpoint(f"{base_url}/auth"), leeway=0))
    issuer.token_ttl = -10
    await h.call("login", "acme", CREDENTIALS)
    expired: list[CredentialsExpiredEvent] = []
    logouts: list[LogoutEvent] = []
    h.manager.on("jwt:expired", expired.append)
    h.manager.on(LogoutEvent, logouts.append)

    with pytest.raises(CredentialsExpiredError, match="no refresh endpoint"):
        await h.get("acme", "/api/whoami")

    assert len(expired) == 1
    assert expired[0].tenant == "acme"
    assert isinstance(expired[0].request, httpx.Request)
    assert expired[0].request.url.path == "/api/whoami"
    assert len(logouts) == 1
    assert logouts[0].tenant == "acme"
    assert issuer.api_calls == 0


async def test_refresh_rejected_by_server_rejects_request(
    make: Any, config: JWTConfig, issuer: Issuer
) -> None:
    h = make(config)
    issuer.token_ttl = -10
    state = await h.call("login", "acme", CREDENTIALS)
    issuer.rotate(state.refresh_token)  # spend it elsewhere: the next use is a reuse
    expired: list[CredentialsExpiredEvent] = []
    h.manager.on_expired(expired.append)

    with pytest.raises(CredentialsExpiredError) as caught:
        await h.get("acme", "/api/whoami")

    assert isinstance(caught.value.__cause__, TokenRejectedError)
    assert caught.value.__cause__.status_code == 400
    assert "invalid_grant" in str(caught.value)
    assert len(expired) == 1
    assert expired[0].error is caught.value.__cause__
    assert issuer.api_calls == 0
    assert await h.call("state", "acme") is None


async def test_manual_refresh_rejected_emits_no_expired_event(
    make: Any, config: JWTConfig, issuer: Issuer
) -> None:
    h = make(config)
    state = await h.call("login", "acme", CREDENTIALS)
    issuer.rotate(state.refresh_token)
    expired: list[Any] = []
    h.manager.on("jwt:expired", expired.append)

    with pytest.raises(TokenRejectedError):
        await h.call("refresh", "acme")

    assert expired == []
    assert await h.call("state", "acme") == state  # not logged out


async def test_logout(make: Any, config: JWTConfig) -> None:
    h = make(config)
    seen: list[tuple[str, bool]] = []
    await h.call("login", "acme", CREDENTIALS)
    store = h.manager.store
    # the event fires before the row goes
    h.manager.on_logout(lambda e: seen.append((e.tenant, store.get(e.tenant) is not None)))

    assert await h.call("logout", "acme") is True

    assert seen == [("acme", True)]
    assert await h.call("is_authenticated", "acme") is False
    assert await h.call("logout", "acme") is False


def test_empty_config_fails_before_any_request() -> None:
    with pytest.raises(ConfigurationError, match="needs a url, or a configure hook"):
        JWTConfig(login=Endpoint())


async def test_state_is_shared_through_the_store(
    make: Any, config: JWTConfig, issuer: Issuer
) -> None:
    store = MemoryTokenStore()
    first, second = make(config, store=store), make(config, store=store)
    state = await first.call("login", "acme", CREDENTIALS)

    assert await second.call("state", "acme") == state
    response = await second.get("acme", "/api/echo")
    assert response.json()["headers"]["authorization"] == f"Bearer {state.token}"
    assert issuer.login_calls == 1


async def test_custom_login_configure_shapes_the_request(
    make: Any, base_url: str, issuer: Issuer
) -> None:
    def configure(credentials: list[str], options: dict[str, Any], view: TenantView) -> None:
        options["method"] = "GET"
        options["params"] = {"username": credentials[0], "password": credentials[1]}
        options["headers"]["X-Tenant"] = view.tenant

    h = make(JWTConfig(login=Endpoint(f"{base_url}/auth", configure=configure)))

    await h.call("login", "acme", ["acme", PASSWORD])

    sent = issuer.token_requests[-1]
    assert sent["method"] == "GET"
    assert sent["query"] == {"username": "acme", "password": PASSWORD}
    assert sent["headers"]["x-tenant"] == "acme"


async def test_custom_login_map_becomes_the_state(make: Any, base_url: str) -> None:
    def map_(response: httpx.Response, options: dict[str, Any], view: TenantView) -> dict[str, Any]:
        body = response.json()
        return {"token": body["token"], "tokenExp": 4102444800, "plan": "gold"}

    h = make(JWTConfig(login=Endpoint(f"{base_url}/auth", map=map_)))

    state = await h.call("login", "acme", CREDENTIALS)

    assert state.token_exp == 4102444800
    assert state.refresh_token is None
    assert state.refresh_token_exp is None
    assert dict(state.extra) == {"plan": "gold"}


async def test_refresh_with_only_a_configure_hook(make: Any, base_url: str, issuer: Issuer) -> None:
    def configure(refresh_token: str, options: dict[str, Any], view: TenantView) -> dict[str, Any]:
        return {
            "method": "POST",
            "url": f"{base_url}/auth/refresh",
            "json": {"refresh_token": refresh_token},
            "headers": {"X-Refresh": "1"},
        }

    h = make(
        JWTConfig(
            login=Endpoint(f"{base_url}/auth"), refresh=Endpoint(configure=configure), leeway=0
        )
    )
    issuer.token_ttl = -10
    await h.call("login", "acme", CREDENTIALS)
    issuer.token_ttl = 300

    assert (await h.get("acme", "/api/whoami")).status_code == 200
    assert issuer.refresh_calls == 1
    assert issuer.token_requests[-1]["headers"]["x-refresh"] == "1"


async def test_custom_refresh_map_becomes_the_state(
    make: Any, base_url: str, issuer: Issuer
) -> None:
    def map_(response: httpx.Response, options: dict[str, Any], view: TenantView) -> dict[str, Any]:
        body = response.json()
        return {"token": body["token"], "refresh_token": body["refresh_token"], "source": "refresh"}

    h = make(
        JWTConfig(
            login=Endpoint(f"{base_url}/auth"),
            refresh=Endpoint(f"{base_url}/auth/refresh", map=map_),
        )
    )
    await h.call("login", "acme", CREDENTIALS)

    state = await h.call("refresh", "acme")

    assert state.token_exp is None
    assert state.refresh_token_exp is None
    assert dict(state.extra) == {"source": "refresh"}
    assert issuer.refresh_calls == 1


async def test_custom_authenticate_sets_a_custom_header(make: Any, base_url: str) -> None:
    def authenticate(request: httpx.Request, view: TenantView) -> None:
        request.headers["X-Api-Token"] = f"{view.tenant}:{view.token}"

    h = make(JWTConfig(login=Endpoint(f"{base_url}/auth"), authenticate=authenticate))
    state = await h.call("login", "acme", CREDENTIALS)

    headers = (await h.get("acme", "/api/echo")).json()["headers"]

    assert headers["x-api-token"] == f"acme:{state.token}"
    assert "authorization" not in headers


def test_events_and_managers_are_exported_from_the_root() -> None:
    for name in (
        "AsyncTokenManager",
        "TokenManager",
        "LoginEvent",
        "LogoutEvent",
        "CredentialsExpiredEvent",
    ):
        assert getattr(jwt_outbound, name).__module__.startswith("jwt_outbound")
    assert LoginEvent.alias == "jwt:login"
    assert LogoutEvent.alias == "jwt:logout"
    assert CredentialsExpiredEvent.alias == "jwt:expired"


async def test_opt_out_sends_without_token(make: Any, config: JWTConfig, issuer: Issuer) -> None:
    h = make(config)
    await h.call("login", "acme", CREDENTIALS)

    response = await h.get("acme", "/public", extensions={"authenticate": False})

    assert response.json() == {"authorization": None}


async def test_not_authenticated_requests_are_sent_untouched(
    make: Any, config: JWTConfig, issuer: Issuer
) -> None:
    h = make(config)

    response = await h.get("nobody", "/public")

    assert response.json() == {"authorization": None}
    assert issuer.login_calls == 0
