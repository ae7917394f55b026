"""The pure expiry rules and the secret-free repr of TokenState."""

from __future__ import annotations

import pytest

from jwt_outbound import TokenState
from jwt_outbound._state import credentials_expired, refresh_usable, token_expired

S = TokenState(
    tenant="t",
    token="secret-access",
    token_exp=100,
    refresh_token="secret-refresh",
    refresh_token_exp=200,
)


@pytest.mark.parametrize(
    ("now", "leeway", "expired"),
    [(99, 0, False), (100, 0, True), (39, 60, False), (40, 60, True)],
)
def test_token_expired_honours_leeway(now: float, leeway: float, expired: bool) -> None:
    assert token_expired(S, now, leeway) is expired


def test_no_exp_never_expires() -> None:
    forever = S.replace(token_exp=None, refresh_token_exp=None)
    assert not token_expired(forever, 10**12, 60)
    assert refresh_usable(forever, 10**12)


def test_refresh_rules() -> None:
    assert refresh_usable(S, 199)
    assert not refresh_usable(S, 200)
    assert not refresh_usable(S.replace(refresh_token=None), 0)
    assert not credentials_expired(S, 150, 0)
    assert credentials_expired(S, 200, 0)


def test_repr_hides_tokens() -> None:
    text = repr(S.replace(extra={"id_token": "secret-id"}))
    assert "secret" not in text
    assert "id_token" in text
