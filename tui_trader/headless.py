"""`tui-trader engine`: the engine with no UI, its events printed one per line.

SIGINT and SIGTERM stop it cleanly: no new entries, working orders cancelled or kept
(engine.orders_on_stop), every write flushed, a stop event recorded, exit 0; positions
stay open and are managed again at the next start. A second SIGINT/SIGTERM within
FORCE_WINDOW_S of the first forces the exit (after committing what was decided)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from typing import Callable

log = logging.getLogger("tui_trader.headless")

FORCE_WINDOW_S = 2.0
"""A second interrupt within this many seconds of the first forces the exit (TUI too)."""
FORCED_EXIT = 130
"""The exit code after a forced exit (as for an interrupted program)."""


class _Stopper:
    """Turns the signals into a clean stop, or a forced exit when one comes twice quickly."""

    def __init__(self, engine, on_force: Callable[[], None]) -> None:
        self.engine = engine
        self.on_force = on_force
        self.requested = asyncio.Event()
        self.last: float | None = None

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        if self.last is not None and now - self.last <= FORCE_WINDOW_S:
            log.warning("%s again within %.0f s: forcing the exit", name, FORCE_WINDOW_S)
            print(f"{name} again: exiting now; what was decided is committed", file=sys.stderr, flush=True)
            self.engine.stop_now()
            self.on_force()
            return
        if self.last is None:
            print(f"{name}: stopping the engine; positions stay open "
                  f"({name} again within {FORCE_WINDOW_S:.0f} s exits at once)", file=sys.stderr, flush=True)
        self.last = now
        self.requested.set()


def _exit_forced() -> None:
    logging.shutdown()
    os._exit(FORCED_EXIT)


async def run_headless(engine, print_event: Callable, on_force: Callable[[], None] = _exit_forced) -> int:
    """Start `engine`, run until a signal, stop cleanly. Start failures propagate."""
    stopper = _Stopper(engine, on_force)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopper, sig.name)
    engine.event_listeners.append(print_event)
    await engine.start()
    print(f"engine running ({engine.mode}); ctrl+c or SIGTERM stops it; positions stay open", flush=True)
    await stopper.requested.wait()
    await engine.stop()
    return 0
