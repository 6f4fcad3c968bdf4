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

from services.ports import EngineService

log = logging.getLogger("tui_trader.headless")

FORCE_WINDOW_S = 2.0
"""A second interrupt within this many seconds of the first forces the exit (TUI too)."""
FORCED_EXIT = 130
"""The exit code after a forced exit (as for an interrupted program)."""


class _Stopper:
    """Turns the signals into a clean stop, or a forced exit when one comes twice quickly."""

    def __init__(self, engine: EngineService, on_force: Callable[[], None]) -> None:
        self.engine = engine
        self.on_force = on_force
        self.requested = asyncio.Event()
        self.last: float | None = None

    def __call__(self, name: str) -> None:
        # What the signal asks for is done first: a message to a closed stderr must not stop the stop.
        now = time.monotonic()
        if self.last is not None and now - self.last <= FORCE_WINDOW_S:
            log.warning("%s again within %.0f s: forcing the exit", name, FORCE_WINDOW_S)
            self.engine.stop_now()
            say(f"{name} again: exiting now; what was decided is committed", sys.stderr)
            self.on_force()
            return
        first = self.last is None
        self.last = now
        self.requested.set()
        if first:
            say(f"{name}: stopping the engine; positions stay open "
                f"({name} again within {FORCE_WINDOW_S:.0f} s exits at once)", sys.stderr)


def say(text: str, stream) -> None:
    """Print a line. A reader that went away (`tui-trader engine | head`) or a terminal that
    closed must not stop the engine, nor its stop: the stream is pointed at /dev/null (so
    the flush at exit cannot fail either) and the engine runs on."""
    try:
        print(text, file=stream, flush=True)
    except (OSError, ValueError):  # ValueError: the stream was closed
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass


def _exit_forced() -> None:
    logging.shutdown()
    os._exit(FORCED_EXIT)


async def run_headless(engine: EngineService, event_text: Callable, on_force: Callable[[], None] = _exit_forced) -> int:
    """Start `engine`, print each event as event_text makes it, run until a signal, stop
    cleanly. Start failures propagate."""
    stopper = _Stopper(engine, on_force)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopper, sig.name)
    engine.event_listeners.append(lambda view: say(event_text(view), sys.stdout))
    await engine.start()
    say(f"engine running ({engine.mode}); ctrl+c or SIGTERM stops it; positions stay open", sys.stdout)
    await stopper.requested.wait()
    await engine.stop()
    return 0
