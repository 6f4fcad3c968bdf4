"""Persistence. SQLModel tables stay in here; the engine hands in domain records."""

from .memory import MemoryStore
from .read_models import read_open_positions
from .schema import SchemaTooNewError
from .sql import SqlStore, StoreLockedError, open_store_readonly

__all__ = [
    "MemoryStore", "SchemaTooNewError", "SqlStore", "StoreLockedError", "open_store_readonly", "read_open_positions",
]
