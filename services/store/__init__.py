"""Persistence. SQLModel tables stay in here; the engine hands in domain records."""

from .memory import MemoryStore
from .schema import SchemaTooNewError
from .sql import SqlStore, StoreLockedError, open_store_readonly, read_open_positions

__all__ = [
    "MemoryStore", "SchemaTooNewError", "SqlStore", "StoreLockedError", "open_store_readonly", "read_open_positions",
]
