"""Clocks. Nothing in services reads the wall clock except RealClock."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time

from .ports import Clock

__all__ = ["Clock", "FakeClock", "RealClock"]  # Clock, the port, is defined in services.ports


class RealClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeClock:
    """A clock that moves only when told to. Sleepers wake when time passes their deadline."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.t = float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    def set(self, t: float) -> None:
        self.t = float(t)
        self._wake()

    def advance(self, seconds: float) -> None:
        self.set(self.t + seconds)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.t + seconds, next(self._seq), fut))
        await fut

    def _wake(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self.t:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)
