"""Encryption at rest of the secret columns (token, refresh token, extra), with key rotation."""

from __future__ import annotations

from collections.abc import Sequence

from .._exceptions import ConfigurationError, StoreError

__all__ = ["Cipher", "FernetCipher"]

_PREFIX = "fernet:"  # marks sealed values; rows written before encryption was on stay readable


class Cipher:
    """How secret columns are written and read. The base class stores them as they are."""

    def seal(self, value: str) -> str:
        return value

    def open(self, value: str, tenant: str) -> str:
        return value

    def stale(self, value: str) -> bool:
        """Whether ``value`` should be sealed again with the current key."""
        return False


class FernetCipher(Cipher):
    """Fernet (AES-128-CBC + HMAC-SHA256) via ``cryptography``. The first key seals; every key
    opens, so keys rotate by putting the new one first and re-sealing the rows."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        try:
            from cryptography.fernet import Fernet, InvalidToken, MultiFernet
        except ImportError:
            raise ConfigurationError(
                "encryption_keys need the cryptography package: pip install 'jwt-outbound[encryption]'"
            ) from None
        if isinstance(keys, (str, bytes)) or not keys:
            raise ConfigurationError("encryption_keys must be a non-empty list of Fernet keys")
        try:
            fernets = [Fernet(key) for key in keys]
        except (ValueError, TypeError):
            raise ConfigurationError(
                "an encryption key is not a Fernet key (32 url-safe base64-encoded bytes; "
                "make one with cryptography.fernet.Fernet.generate_key())"
            ) from None
        self._primary = fernets[0]
        self._all = MultiFernet(fernets)
        self._invalid = InvalidToken

    def seal(self, value: str) -> str:
        return _PREFIX + self._primary.encrypt(value.encode()).decode()

    def open(self, value: str, tenant: str) -> str:
        if not value.startswith(_PREFIX):
            return value
        try:
            return self._all.decrypt(value[len(_PREFIX) :].encode()).decode()
        except self._invalid:
            error = StoreError(
                f"the stored state of tenant {tenant!r} cannot be decrypted with any of the "
                "configured encryption keys",
                tenant=tenant,
            )
        raise error

    def stale(self, value: str) -> bool:
        if not value.startswith(_PREFIX):
            return True
        try:
            self._primary.decrypt(value[len(_PREFIX) :].encode())
        except self._invalid:
            return True
        return False
