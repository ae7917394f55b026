"""The decision core without any I/O: flows are driven by hand, effect by effect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from jwt_outbound import (
    CredentialsExpiredError,
    CredentialsExpiredEvent,
    Endpoint,
    JWTConfig,
    LoginEvent,
    LogoutEvent,
    TokenEndpointError,
    TokenState,
)
from jwt_outbound._core import MISS, Core
from jwt_outbound._effects import (
    AcquireLease,
    Call,
    Delete,
    Emit,
    Fetch,
    Flow,
    Load,
    ReleaseLease,
    Save,
    Sleep,
    advance,
)

NOW = 1_000_000.0
CONFIG = JWTConfig(
    login=Endpoint("https://idp.test/auth"), refresh=Endpoint("https://idp.test/refresh"), leeway=60
)


def core(**kwargs: Any) -> Core:
    options: dict[str, Any] = {"clock": lambda: NOW, "credentials_provider": None, "state_ttl": 5.0}
    options.update(kwargs)
    return Core(kwargs.pop("config", CONFIG), **{k: v for k, v in options.items() if k != "config"})


def state(**changes: Any) -> TokenState:
    base = TokenState(
        tenant="acme",
        token="tok-1",
        token_exp=int(NOW + 600),
        refresh_token="ref-1",
        refresh_token_exp=None,
        date=int(NOW),
        version=3,
    )
    return base.replace(**changes)


def run(flow: Flow, handle: Callable[[Any], Any]) -> tuple[list[Any], Any]:
    """Drive ``flow``; ``handle(effect)`` answers each effect. Returns (effects, result)."""
    effects: list[Any] = []
    value: Any = None
    error: BaseException | None = None
    while True:
        done, effect = advance(flow, value, error)
        if done:
            return effects, effect
        effects.append(effect)
        value, error = None, None
        try:
            value = handle(effect)
        except Exception as exc:
            error = exc


def token_response(token: str = "tok-2", refresh: str = "ref-2") -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": token, "refresh_token": refresh, "expires_in": 300}
    )


def answer(
    rows: list[TokenState | None], *, lease: bool = True, response: httpx.Response | None = None
) -> Callable[[Any], Any]:
    """Loads answer from ``rows`` in turn; hooks are called for real."""
    loads = iter(rows)

    def handle(effect: Any) -> Any:
        if isinstance(effect, Load):
            return next(loads)
        if isinstance(effect, AcquireLease):
            return lease
        if isinstance(effect, Call):
            return effect.hook(*effect.args)
        if isinstance(effect, Fetch):
            return response or token_response()
        if isinstance(effect, (Save, Delete)):
            return True
        return None

    return handle


def test_valid_state_costs_one_read() -> None:
    effects, result = run(core().ensure("acme", None), answer([state()]))
    assert [type(e) for e in effects] == [Load]
    assert result == state()


def test_no_state_and_no_provider_sends_untouched() -> None:
    effects, result = run(core().ensure("acme", None), answer([None]))
    assert result is None
    assert [type(e) for e in effects] == [Load]


def test_expired_token_refreshes_under_the_lease_then_saves_with_cas() -> None:
    held = state(token_exp=int(NOW + 30))  # inside the leeway
    effects, result = run(core().ensure("acme", None), answer([held]))
    kinds = [type(e) for e in effects]
    assert kinds == [Load, AcquireLease, Call, Fetch, Call, Save, Emit]
    save = effects[5]
    assert save.expected_version == 3
    assert save.state.version == 4
    assert result.token == "tok-2"
    assert result.token_exp == int(NOW + 300)
    event = effects[6].event
    assert isinstance(event, LoginEvent)
    assert event.action == "refresh"


def test_lease_held_elsewhere_waits_for_the_new_version() -> None:
    held = state(token_exp=int(NOW - 1))
    renewed = state(token="tok-9", version=4)
    effects, result = run(core().ensure("acme", None), answer([held, held, renewed], lease=False))
    kinds = [type(e) for e in effects]
    assert kinds == [Load, AcquireLease, Load, Sleep, AcquireLease, Load]
    assert Fetch not in kinds
    assert result == renewed


def test_waiting_gives_up_after_the_lease_runs_out() -> None:
    held = state(token_exp=int(NOW - 1))
    short = JWTConfig(
        login=CONFIG.login, refresh=Endpoint("https://idp.test/r", timeout=0.5), refresh_lease=1
    )
    with pytest.raises(TokenEndpointError, match="waiting for another worker"):
        run(core(config=short).ensure("acme", None), answer([held] * 1000, lease=False))


def test_failed_refresh_releases_the_lease_and_keeps_the_state() -> None:
    held = state(token_exp=int(NOW - 1))
    effects: list[Any] = []
    handle = answer([held], response=httpx.Response(503))
    with pytest.raises(TokenEndpointError, match="503"):
        run(core().ensure("acme", None), lambda e: effects.append(e) or handle(e))
    kinds = [type(e) for e in effects]
    assert kinds[-1] is ReleaseLease
    assert Save not in kinds
    assert Delete not in kinds


def test_unrenewable_token_emits_expired_then_logs_out_with_cas() -> None:
    held = state(token_exp=int(NOW - 1), refresh_token=None)
    effects: list[Any] = []
    handle = answer([held])
    with pytest.raises(CredentialsExpiredError, match="no refresh token is held"):
        run(core().ensure("acme", None), lambda e: effects.append(e) or handle(e))
    assert [type(e) for e in effects] == [Load, Emit, Emit, Delete]
    assert isinstance(effects[1].event, CredentialsExpiredEvent)
    assert isinstance(effects[2].event, LogoutEvent)
    assert effects[3].expected_version == 3  # a newer login by another worker survives


def test_renewal_after_401_skips_when_someone_already_renewed() -> None:
    effects, result = run(core().ensure("acme", None, rejected_token="tok-old"), answer([state()]))
    assert [type(e) for e in effects] == [Load]
    assert result == state()


def test_login_compare_and_swap_retries_on_a_moving_row() -> None:
    rows = [state(version=5), state(version=6)]
    saves: list[Save] = []
    base = answer(rows)

    def handle(effect: Any) -> Any:
        if isinstance(effect, Save):
            saves.append(effect)
            return len(saves) > 1  # first write loses the race
        return base(effect)

    _, result = run(core().login("acme", {"username": "u"}), handle)
    assert [(s.expected_version, s.state.version) for s in saves] == [(5, 6), (6, 7)]
    assert result.version == 7


@pytest.mark.parametrize(
    ("entry", "age", "expected"),
    [
        (None, 0.0, MISS),
        ((state(), 0.0), 1.0, "state"),
        ((state(), 0.0), 6.0, MISS),  # older than state_ttl: read the row again
        ((state(token_exp=int(NOW + 10)), 0.0), 1.0, MISS),  # near expiry
        ((None, 0.0), 1.0, None),  # known absent, no provider: send untouched
    ],
)
def test_cache_answers(entry: Any, age: float, expected: Any) -> None:
    answer_ = core().cached(entry, age)
    assert answer_ == (state() if expected == "state" else expected) or answer_ is expected


def test_cache_miss_for_absent_state_when_a_provider_can_log_in() -> None:
    assert core(credentials_provider=lambda t: {}).cached((None, 0.0), 1.0) is MISS


def test_a_provider_login_also_runs_once_under_the_lease() -> None:
    dead = state(token_exp=int(NOW - 1), refresh_token_exp=int(NOW - 1))
    provided = core(credentials_provider=lambda tenant: {"username": tenant})
    effects, result = run(provided.ensure("acme", None), answer([dead, dead]))
    kinds = [type(e) for e in effects]
    assert kinds[:3] == [Load, AcquireLease, Call]  # the provider is asked only by the holder
    assert Fetch in kinds
    assert ReleaseLease not in kinds  # the login's save ends the lease
    assert result.token == "tok-2"

    renewed = state(token="tok-9", version=4)
    effects, result = run(provided.ensure("acme", None), answer([dead, renewed], lease=False))
    assert [type(e) for e in effects] == [Load, AcquireLease, Load]
    assert result == renewed
