"""``jwt-outbound``: migrate the token table, list tenants' token state, log a tenant in or out,
re-encrypt the rows after a key rotation.

Every command takes ``--database-url`` (default: ``$JWT_OUTBOUND_DATABASE_URL``, else the
SQLite file ``jwt_outbound.db``). Tokens are never printed.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from ._config import JWTConfig
from ._exceptions import ConfigurationError, JWTOutboundError
from ._migrate import current_revision, migrate
from ._state import TokenState, token_expired, validate_tenant
from ._store import SQLTokenStore, default_database_url
from ._store.sql import ENCRYPTION_KEYS_ENV
from ._sync_manager import TokenManager

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    url = args.database_url or default_database_url()
    try:
        return int(args.run(args, url))
    except JWTOutboundError as exc:
        print(f"jwt-outbound: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jwt-outbound", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--database-url",
        default=os.environ.get("JWT_OUTBOUND_DATABASE_URL"),
        help="SQLAlchemy URL of the token database (default: $JWT_OUTBOUND_DATABASE_URL)",
    )
    commands = parser.add_subparsers(dest="command")

    cmd = commands.add_parser("migrate", parents=[common], help="upgrade the token table")
    cmd.add_argument("--revision", default="head")
    cmd.set_defaults(run=_migrate)

    cmd = commands.add_parser("status", parents=[common], help="list each tenant's token state")
    cmd.add_argument("--json", action="store_true", help="one JSON document on stdout")
    cmd.set_defaults(run=_status)

    cmd = commands.add_parser("logout", parents=[common], help="delete a tenant's token state")
    cmd.add_argument("tenant")
    cmd.set_defaults(run=_logout)

    cmd = commands.add_parser(
        "rotate-keys",
        parents=[common],
        help="re-encrypt every row with the first of $JWT_OUTBOUND_ENCRYPTION_KEYS",
    )
    cmd.set_defaults(run=_rotate_keys)

    cmd = commands.add_parser(
        "login",
        parents=[common],
        help="log a tenant in; credentials are read as JSON from stdin",
    )
    cmd.add_argument("tenant")
    cmd.add_argument(
        "--config",
        required=True,
        help="module:attribute of the JWTConfig (or a function returning it)",
    )
    cmd.set_defaults(run=_login)
    return parser


def _migrate(args: argparse.Namespace, url: str) -> int:
    migrate(url, args.revision)
    print(f"jwt_outbound tables at revision {current_revision(url)}")
    return 0


def _status(args: argparse.Namespace, url: str) -> int:
    store = SQLTokenStore(url)
    try:
        rows = [_describe(state, time.time()) for state in store.states()]
    finally:
        store.close()
    if args.json:
        print(json.dumps({"revision": current_revision(url), "tenants": rows}, indent=2))
        return 0
    print(f"{'tenant':32} {'token':8} {'expires':20} {'refresh':8} {'version':>7}")
    for row in rows:
        print(
            f"{row['tenant']:32} {row['token']:8} {row['token_exp'] or '-':20} "
            f"{'yes' if row['refresh_token'] else 'no':8} {row['version']:>7}"
        )
    return 0


def _describe(state: TokenState, now: float) -> dict[str, Any]:
    def iso(seconds: int | None) -> str | None:
        if seconds is None:
            return None
        return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat()

    return {
        "tenant": state.tenant,
        "token": "expired" if token_expired(state, now, 0) else "valid",
        "token_exp": iso(state.token_exp),
        "refresh_token": state.refresh_token is not None,
        "refresh_token_exp": iso(state.refresh_token_exp),
        "date": iso(state.date),
        "version": state.version,
    }


def _logout(args: argparse.Namespace, url: str) -> int:
    tenant = validate_tenant(args.tenant)
    store = SQLTokenStore(url)
    try:
        removed = store.delete(tenant)
    finally:
        store.close()
    print(f"{tenant}: {'logged out' if removed else 'was not logged in'}")
    return 0


def _rotate_keys(args: argparse.Namespace, url: str) -> int:
    if not os.environ.get(ENCRYPTION_KEYS_ENV):
        raise ConfigurationError(f"set {ENCRYPTION_KEYS_ENV} to the keys, the new one first")
    store = SQLTokenStore(url)
    try:
        changed = store.rotate_encryption()
    finally:
        store.close()
    print(f"re-encrypted {changed} row(s) with the first key")
    return 0


def _login(args: argparse.Namespace, url: str) -> int:
    config = _load_config(args.config)
    try:
        credentials = json.loads(sys.stdin.read())
    except ValueError:
        raise ConfigurationError("credentials on stdin are not JSON") from None
    store = SQLTokenStore(url)
    try:
        with TokenManager(config, store=store) as manager:
            state = manager.login(args.tenant, credentials)
    finally:
        store.close()
    print(f"{state.tenant}: logged in, token expires {_describe(state, time.time())['token_exp']}")
    return 0


def _load_config(spec: str) -> JWTConfig:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"--config must look like module:attribute, not {spec!r}")
    if os.getcwd() not in sys.path:  # as uvicorn does: the app's modules live in the cwd
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load {spec!r}: {exc}") from None
    if callable(found) and not isinstance(found, JWTConfig):
        found = found()
    if not isinstance(found, JWTConfig):
        raise ConfigurationError(f"{spec!r} is not a JWTConfig")
    return found
