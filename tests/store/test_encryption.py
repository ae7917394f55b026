"""Encryption at rest: sealed columns, readable plaintext rows, key rotation, a wrong key."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from jwt_outbound import ConfigurationError, SQLTokenStore, StoreError, TokenState
from jwt_outbound._store.schema import tokens

from ..databases import unique_tenant

OLD, NEW = Fernet.generate_key(), Fernet.generate_key()


@pytest.fixture
def url(migrated_url: str) -> str:
    return migrated_url


def state(tenant: str) -> TokenState:
    return TokenState(
        tenant=tenant,
        token="access-SECRET",
        refresh_token="refresh-SECRET",
        extra={"id_token": "id-SECRET"},
    )


def raw_row(store: SQLTokenStore, tenant: str) -> dict[str, str | None]:
    with store._engines.sync().connect() as connection:
        row = connection.execute(
            sa.select(tokens.c.token, tokens.c.refresh_token, tokens.c.extra).where(
                tokens.c.tenant == tenant
            )
        ).one()
    return dict(row._mapping)


def open_store(url: str, keys: list[bytes] | None) -> SQLTokenStore:
    return SQLTokenStore(url, encryption_keys=keys)


def test_secret_columns_are_sealed_and_read_back(url: str) -> None:
    tenant = unique_tenant()
    store = open_store(url, [NEW])
    try:
        assert store.save(state(tenant), expected_version=None)
        raw = raw_row(store, tenant)
        assert all(value is not None and value.startswith("fernet:") for value in raw.values())
        assert not any("SECRET" in str(value) for value in raw.values())
        assert store.get(tenant) == state(tenant)
    finally:
        store.close()


def test_rotation_reseals_rows_under_the_new_key(url: str) -> None:
    sealed, plain = unique_tenant("sealed"), unique_tenant("plain")
    before = open_store(url, None)
    old = open_store(url, [OLD])
    rotating = open_store(url, [NEW, OLD])
    after = open_store(url, [NEW])
    try:
        assert before.save(state(plain), expected_version=None)  # written before encryption
        assert old.save(state(sealed), expected_version=None)
        assert rotating.get(sealed) == state(sealed)
        assert rotating.get(plain) == state(plain)
        with pytest.raises(StoreError, match="cannot be decrypted") as caught:
            after.get(sealed)
        assert "SECRET" not in str(caught.value)

        assert rotating.rotate_encryption() == 2
        assert rotating.rotate_encryption() == 0

        assert after.get(sealed) == state(sealed)
        assert after.get(plain) == state(plain)
        assert "SECRET" not in str(raw_row(after, plain))
    finally:
        for store in (before, old, rotating, after):
            store.close()


def test_keys_come_from_the_environment(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = unique_tenant()
    monkeypatch.setenv("JWT_OUTBOUND_ENCRYPTION_KEYS", f"{NEW.decode()},{OLD.decode()}")
    store = SQLTokenStore(url)
    try:
        store.save(state(tenant), expected_version=None)
        assert raw_row(store, tenant)["token"].startswith("fernet:")  # type: ignore[union-attr]
    finally:
        store.close()


@pytest.mark.parametrize("keys", [[], [b"not-a-key"], "a-string"])
def test_bad_keys_are_a_configuration_error(tmp_path: Path, keys: object) -> None:
    with pytest.raises(ConfigurationError):
        SQLTokenStore(f"sqlite:///{tmp_path / 'x.db'}", encryption_keys=keys)  # type: ignore[arg-type]
