"""WSGIOutboundMiddleware under Flask and Django, and under a threaded WSGI server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask
import httpx
import pytest
from werkzeug.serving import make_server

from jwt_outbound import (
    JWTConfig,
    JWTOutboundError,
    LogoutEvent,
    MemoryTokenStore,
    OutboundClient,
    TokenManager,
    WSGIOutboundMiddleware,
    error_response,
    resolvers,
)

from .issuer import PASSWORD, Issuer


def provider(tenant: str) -> dict[str, str]:
    return {"username": tenant, "password": PASSWORD}


@pytest.fixture
def manager(config: JWTConfig) -> Iterator[TokenManager]:
    with TokenManager(config, credentials_provider=provider, store=MemoryTokenStore()) as manager:
        yield manager


def flask_app(manager: TokenManager, base_url: str) -> flask.Flask:
    app = flask.Flask("outbound-test")

    @app.get("/whoami")
    def whoami() -> Any:
        client: OutboundClient = flask.request.environ["jwt_outbound.client"]
        return client.get("/api/whoami").json()

    @app.post("/logout")
    def logout() -> Any:
        client: OutboundClient = flask.request.environ["jwt_outbound.client"]
        assert client.jwt is not None
        return {"removed": client.jwt.logout()}

    @app.errorhandler(JWTOutboundError)
    def outbound_failed(error: JWTOutboundError) -> Any:
        status, body = error_response(error)
        return body, status

    app.wsgi_app = WSGIOutboundMiddleware(  # type: ignore[method-assign]
        app.wsgi_app,
        manager=manager,
        tenant_resolver=resolvers.from_header("X-Tenant-ID"),
        base_url=base_url,
    )
    return app


def wsgi_client(app: Any) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://app")


def test_flask_handler_gets_its_tenants_client(
    manager: TokenManager, base_url: str, issuer: Issuer
) -> None:
    logouts: list[LogoutEvent] = []
    manager.on_logout(logouts.append)
    with wsgi_client(flask_app(manager, base_url)) as client:
        assert client.get("/whoami", headers={"X-Tenant-ID": "acme"}).json()["sub"] == "acme"
        assert client.post("/logout", headers={"X-Tenant-ID": "acme"}).json() == {"removed": True}

    assert issuer.login_calls == 1
    assert [e.tenant for e in logouts] == ["acme"]


def test_flask_error_pattern_answers_json(
    manager: TokenManager, base_url: str, issuer: Issuer
) -> None:
    issuer.failure = 503
    with wsgi_client(flask_app(manager, base_url)) as client:
        response = client.get("/whoami", headers={"X-Tenant-ID": "acme"})
        bad = client.get("/whoami", headers={"X-Tenant-ID": "no/slashes"})

    assert response.status_code == 503
    assert response.json() == {"error": "outbound_auth_unavailable", "tenant": "acme"}
    assert bad.status_code == 400


def test_threaded_server_keeps_tenants_apart(
    manager: TokenManager, base_url: str, issuer: Issuer
) -> None:
    server = make_server("127.0.0.1", 0, flask_app(manager, base_url), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    tenants = [f"w{i}" for i in range(10)]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_port}") as client:

            def call(tenant: str) -> str:
                sub: str = client.get("/whoami", headers={"X-Tenant-ID": tenant}).json()["sub"]
                return sub

            with ThreadPoolExecutor(16) as pool:
                subs = list(pool.map(call, tenants * 10))
    finally:
        server.shutdown()
        thread.join(5)

    assert subs == tenants * 10
    assert issuer.login_calls == 10


def test_django(manager: TokenManager, base_url: str) -> None:
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            ROOT_URLCONF=__name__,
            ALLOWED_HOSTS=["*"],
            SECRET_KEY="test-only",
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            DATABASES={},
            USE_TZ=True,
        )
    import django
    from django.core.wsgi import get_wsgi_application

    django.setup()
    app = WSGIOutboundMiddleware(
        get_wsgi_application(),
        manager=manager,
        tenant_resolver=resolvers.from_path(0),
        base_url=base_url,
    )
    with wsgi_client(app) as client:
        response = client.get("/globex/whoami")

    assert response.status_code == 200
    assert response.json()["sub"] == "globex"


def django_whoami(request: Any, tenant: str) -> Any:
    from django.http import JsonResponse

    client: OutboundClient = request.META["jwt_outbound.client"]
    return JsonResponse(client.get("/api/whoami").json())


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("<str:tenant>/whoami", django_whoami)]


def __getattr__(name: str) -> Any:
    # Django reads urlpatterns from ROOT_URLCONF (this module) only once it is configured.
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)
