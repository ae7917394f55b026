"""The example app end to end: issuer, downstream API and service on loopback, SQLite default."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from example_app import downstream, issuer
from example_app.service import create_app

from .issuer import serve


def test_example_app_serves_each_tenant_its_own_orders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default SQLite file lands here
    monkeypatch.delenv("JWT_OUTBOUND_DATABASE_URL", raising=False)
    with serve(issuer.app) as issuer_url, serve(downstream.app) as downstream_url:
        app = create_app(issuer_url, downstream_url)
        with serve(app, lifespan="on") as service_url, httpx.Client(base_url=service_url) as client:
            acme = client.get("/acme/orders").json()
            globex = client.get("/globex/orders").json()
            again = client.get("/acme/orders").json()
            unknown = client.get("/umbrella/orders")
            token = client.get("/acme/token").json()
            logout = client.post("/acme/logout").json()
            after = client.get("/acme/token").json()
            audit = client.get("/audit").json()

    assert (
        acme
        == again
        == {"via": "jwt_outbound", "tenant": "acme", "orders": downstream.ORDERS["acme"]}
    )
    assert globex["tenant"] == "globex"
    assert unknown.status_code == 401  # no service account: sent without a token
    assert token["authenticated"] is True
    assert token["version"] == 1
    assert logout == {"tenant": "acme", "logged_out": True}
    assert after == {"tenant": "acme", "authenticated": False}
    assert audit == [
        {"event": "jwt:login", "tenant": "acme", "action": "login"},
        {"event": "jwt:login", "tenant": "globex", "action": "login"},
        {"event": "jwt:logout", "tenant": "acme"},
    ]
    assert (tmp_path / "jwt_outbound.db").exists()
