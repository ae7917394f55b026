"""Token stores: the protocol, process memory and SQL."""

from .base import TokenStore
from .memory import MemoryTokenStore
from .sql import SQLTokenStore, default_database_url

__all__ = ["MemoryTokenStore", "SQLTokenStore", "TokenStore", "default_database_url"]
