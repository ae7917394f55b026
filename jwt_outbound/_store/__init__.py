"""Token stores: the protocol, process memory and SQL."""

from .base import TokenStore
from .memory import MemoryTokenStore

__all__ = ["MemoryTokenStore", "TokenStore"]
