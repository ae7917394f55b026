"""Configuration is validated on construction; default hooks behave as the original's."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from jwt_outbound import (
    AsyncTokenManager,
    ConfigurationError,
    Endpoint,
    JWTConfig,
    MemoryTokenStore,
    TenantView,
    TokenEndpointError,
    TokenManager,
)
from jwt_outbound._config import default_login_configure, default_map

ISSUER = "https://idp.test"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Endpoint("/auth"), "absolute http"),
        (lambda: Endpoint(f"{ISSUER}/auth", method="TRACE"), "method must be one of"),
        (lambda: Endpoint(f"{ISSUER}/auth", timeout=0), "positive number"),
        (lambda: Endpoint(f"{ISSUER}/auth", options={"auth": ("u", "p")}), "do not take"),
        (lambda: JWTConfig(login=Endpoint()), "needs a url"),
        (
            lambda: JWTConfig(login=Endpoint(f"{ISSUER}/a"), refresh=Endpoint()),
            "refresh needs a url",
        ),
        (lambda: JWTConfig(login=Endpoint(f"{ISSUER}/a"), leeway=-1), "leeway"),
        (
            lambda: JWTConfig(
                login=Endpoint(f"{ISSUER}/a"),
                refresh=Endpoint(f"{ISSUER}/r", timeout=30),
                refresh_lease=30,
            ),
            "shorter than refresh_lease",
        ),
    ],
)
def test_invalid_configuration_says_what_to_change(build: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build()


def test_sync_manager_refuses_coroutine_hooks() -> None:
    async def authenticate(request: httpx.Request, view: TenantView) -> None: ...

    config = JWTConfig(login=Endpoint(f"{ISSUER}/a"), authenticate=authenticate)
    with pytest.raises(ConfigurationError, match="AsyncTokenManager"):
        TokenManager(config, store=MemoryTokenStore())
    with TokenManager(
        JWTConfig(login=Endpoint(f"{ISSUER}/a")), store=MemoryTokenStore()
    ) as manager:

        async def handler(event: Any) -> None: ...

        with pytest.raises(ConfigurationError, match="synchronously"):
            manager.on("jwt:login", handler)
        with pytest.raises(ConfigurationError, match="unknown event"):
            manager.on("jwt:nope", print)


def test_request_options_are_a_fresh_copy_each_time() -> None:
    endpoint = Endpoint(f"{ISSUER}/a", headers={"X": "1"}, options={"json": {"scope": ["a"]}})
    first = endpoint.request_options()
    first["headers"]["Y"] = "2"
    first["json"]["scope"].append("b")
    assert endpoint.request_options() == {
        "method": "POST",
        "url": f"{ISSUER}/a",
        "headers": {"X": "1"},
        "params": {},
        "timeout": 10.0,
        "json": {"scope": ["a"]},
    }


def _view() -> TenantView:
    return TenantView("acme", None, 1_000.0)


def test_default_login_configure_get_uses_params_post_uses_json() -> None:
    get = Endpoint(f"{ISSUER}/a", method="GET").request_options()
    default_login_configure({"u": "x"}, get, _view())
    post = Endpoint(f"{ISSUER}/a").request_options()
    default_login_configure({"u": "x"}, post, _view())
    assert get["params"] == {"u": "x"}
    assert "json" not in get
    assert post["json"] == {"u": "x"}
    assert post["params"] == {}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"access_token": "opaque", "expires_in": 60}, {"token": "opaque", "token_exp": 1_060}),
        ({"access_token": "opaque", "expires_in": "60.5"}, {"token": "opaque", "token_exp": 1_060}),
        ({"token": "opaque"}, {"token": "opaque", "token_exp": None}),
        (
            {"access_token": "a", "refresh_token": "r", "refresh_expires_in": 100, "scope": "x"},
            {
                "token": "a",
                "token_exp": None,
                "refresh_token": "r",
                "refresh_token_exp": 1_100,
                "scope": "x",
            },
        ),
    ],
)
def test_default_map(body: dict[str, Any], expected: dict[str, Any]) -> None:
    assert default_map(httpx.Response(200, json=body), {}, _view()) == expected


def test_default_map_reads_jwt_exp_claims() -> None:
    import jwt

    token = jwt.encode({"exp": 5_000}, "k" * 32, algorithm="HS256")
    refresh = jwt.encode({"exp": 9_000}, "k" * 32, algorithm="HS256")
    mapped = default_map(
        httpx.Response(200, json={"token": token, "refresh_token": refresh}), {}, _view()
    )
    assert mapped["token_exp"] == 5_000
    assert mapped["refresh_token_exp"] == 9_000


@pytest.mark.parametrize(
    "body", [b"nope", b"[]", b'{"expires_in": 3}', b'{"access_token": "a", "expires_in": "NaN"}']
)
def test_default_map_refuses_what_is_not_a_token(body: bytes) -> None:
    with pytest.raises(TokenEndpointError):
        default_map(httpx.Response(200, content=body), {}, _view())


def test_async_manager_takes_coroutine_hooks() -> None:
    async def authenticate(request: httpx.Request, view: TenantView) -> None: ...

    manager = AsyncTokenManager(
        JWTConfig(login=Endpoint(f"{ISSUER}/a"), authenticate=authenticate),
        store=MemoryTokenStore(),
    )
    assert manager.config.authenticate is authenticate
