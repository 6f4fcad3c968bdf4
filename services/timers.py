"""The engine's timed work, due-driven: a heap of (due, seq, kind, key). An item is scheduled
when its time becomes known and is never cancelled: whoever pops it checks it against the
current state, so an item that changed or ended meanwhile costs one pop. The tick then costs
what is due, not what is open."""

from __future__ import annotations

from heapq import heappop, heappush
from itertools import count
from typing import Hashable


class Timers:
    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, Hashable]] = []
        self._seq = count()  # ties go first in, and keys are never compared

    def at(self, due: float, kind: str, key: Hashable = None) -> None:
        heappush(self._heap, (due, next(self._seq), kind, key))

    def wake(self, group: Hashable, at: float | None) -> None:
        """Have the tick look at this group from `at` on (a time exit, an exit to send again);
        nothing when there is no time."""
        if at is not None:
            heappush(self._heap, (at, next(self._seq), "group", group))

    def pop_due(self, now: float) -> dict[str, dict[Hashable, None]]:
        """Every item due at `now`, by kind, each key once (in the order they fell due)."""
        heap = self._heap
        due: dict[str, dict[Hashable, None]] = {}
        while heap and heap[0][0] <= now:
            _, _, kind, key = heappop(heap)
            keys = due.get(kind)
            if keys is None:
                keys = due[kind] = {}
            keys[key] = None
        return due
