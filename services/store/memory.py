"""A store that keeps nothing: for replay, which is a simulation (DESIGN §8), and for tests
that only look at the engine."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

from ..domain import Record
from .loaded import LoadedState


class MemoryStore:
    ok = True
    error = ""
    needs_marks = True  # engine tests take the path a database does (touch() keeps nothing)
    # It never fails, so never calls these (ports.Store).
    on_failure: Callable[[str], None] | None = None
    on_recovery: Callable[[int], None] | None = None
    on_refused: Callable[[str], None] | None = None

    def __init__(self) -> None:
        self.writes = 0

    def open(self, day_start: float = 0.0) -> LoadedState:
        return LoadedState()

    def write(self, records: Iterable[Record]) -> None:
        self.writes += 1
        for rec in records:
            rec.saved = True

    def touch(self, record: Record) -> None:
        pass

    def start(self) -> None:
        pass

    def flush(self) -> None:
        pass

    async def drain(self) -> None:
        pass

    def close(self, force: bool = False) -> None:
        pass

    # Keeping nothing, it has no history beyond what the engine holds in memory.

    def read_events(self, query, *, before_id=None, limit=200) -> list:
        return []

    def iter_events(self, query, up_to_id=None) -> Iterator:
        return iter(())

    def purge_events(self, cutoff_ts: float, max_rows: int) -> int:
        return 0
