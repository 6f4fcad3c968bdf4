"""The alert hook (`alerts.on_alert`): a shell command run for every new alert, with the
alert as one JSON object (services.event_log.event_dict) and a newline on its stdin.

An engine attachment. The engine calls its listener synchronously for every event, so the
listener only queues the alert; tasks run the commands. Each command runs in its own
session (process group), so a command past `timeout_s` is killed together with anything it
started. At most MAX_RUNNING commands run at once and MAX_WAITING alerts wait; beyond that
alerts are dropped and counted.

A failure (non-zero exit, timeout, cannot start) goes to the log file and becomes a
warning event of category "alerts" — never an alert itself, so a failing hook cannot feed
on its own failures."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import tempfile
from collections import deque

from .event_log import event_dict
from .views import EventView

log = logging.getLogger("tui_trader.alert_hook")

MAX_RUNNING = 4
MAX_WAITING = 100
STOP_GRACE_S = 5.0
"""At stop, running commands get at most this long (and at most their timeout) to finish."""
TERM_GRACE_S = 1.0
"""A command being killed gets this long after SIGTERM before SIGKILL."""
STDERR_TAIL = 500
"""Characters of the command's stderr kept for the failure message."""


class AlertHook:
    """Engine attachment running `command` for every new alert (see the module doc)."""

    def __init__(self, command: str, timeout_s: float, max_running: int = MAX_RUNNING,
                 max_waiting: int = MAX_WAITING) -> None:
        self.command = command
        self.timeout_s = timeout_s
        self.max_running = max_running
        self.max_waiting = max_waiting
        self.engine = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: dict[asyncio.Task, EventView] = {}
        self._waiting: deque[EventView] = deque()
        self._dropped = 0  # since the last warning about drops
        self._groups: set[int] = set()  # process groups of the commands running now
        self._accepting = False

    # -- attachment protocol --------------------------------------------------------------

    async def start(self, engine) -> None:
        self.engine = engine
        self._loop = asyncio.get_running_loop()
        self._accepting = True
        engine.event_listeners.append(self._on_event)
        # alerts the engine raised while it started (recovery, orphaned positions), oldest first
        for view in reversed(engine.alerts_view()):
            if view.id >= engine.first_event_id:
                self._on_event(view)

    async def stop(self) -> None:
        """Stop taking alerts; running commands get a short grace, then are killed. Alerts
        still waiting are not delivered (they stay unread in the engine)."""
        if not self._accepting:
            return
        self._accepting = False
        self.engine.event_listeners.remove(self._on_event)
        undelivered = [view.id for view in self._waiting]
        self._waiting.clear()
        if self._running:
            _, late = await asyncio.wait(list(self._running), timeout=min(self.timeout_s, STOP_GRACE_S))
            ids = sorted(self._running[task].id for task in late)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            if ids:
                self._warn(f"alert hook not completed for {_alerts(ids)}: still running when the engine stopped; "
                           "killed", {"alert_ids": ids})
        if undelivered:
            self._warn(f"alert hook not run for {len(undelivered)} waiting alert(s): the engine stopped first",
                       {"alert_ids": undelivered})
        self._report_drops()

    def stop_now(self) -> None:
        """The forced stop (the process exits next): kill every running command at once."""
        self._accepting = False
        for pgid in list(self._groups):
            _signal_group(pgid, signal.SIGKILL)

    # -- on the loop, inside the engine's event call: never blocks -------------------------

    def _on_event(self, view: EventView) -> None:
        if not view.needs_ack or not self._accepting:
            return
        if len(self._running) < self.max_running:
            self._launch(view)
        elif len(self._waiting) < self.max_waiting:
            self._waiting.append(view)
        else:
            self._dropped += 1

    def _launch(self, view: EventView) -> None:
        task = self._loop.create_task(self._deliver(view), name=f"alert-hook-{view.id}")
        self._running[task] = view
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._running.pop(task, None)
        if self._waiting and self._accepting:
            self._launch(self._waiting.popleft())

    # -- a task per command ---------------------------------------------------------------

    async def _deliver(self, view: EventView) -> None:
        try:
            failure = await self._run(view)
        except Exception as exc:  # a bug here must never reach the engine
            log.exception("alert hook for alert #%d failed unexpectedly", view.id)
            failure = f"internal error: {exc!r}; see the log file"
        if failure:
            self._warn(f"alert hook failed for alert #{view.id} ({_one_line(failure)})",
                       {"alert_id": view.id, "failure": failure})
        self._report_drops()

    async def _run(self, view: EventView) -> str:
        """Run the command for one alert: "" when it succeeded, else what went wrong."""
        data = (json.dumps(event_dict(view)) + "\n").encode()
        # stderr goes to a file, not a pipe: a process the command leaves running in the
        # background must not keep the hook waiting for the pipe to close.
        with tempfile.TemporaryFile() as stderr:
            try:
                proc = await asyncio.create_subprocess_shell(
                    self.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
                    start_new_session=True)
            except OSError as exc:
                return f"cannot start: {exc.strerror or exc}"
            self._groups.add(proc.pid)
            if not self._accepting:  # a forced stop came while it started: it must not outlive the engine
                _signal_group(proc.pid, signal.SIGKILL)
            try:
                async with asyncio.timeout(self.timeout_s):
                    await proc.communicate(data)
            except TimeoutError:
                await _kill_group(proc)
                return f"timed out after {self.timeout_s:g} s; killed"
            except asyncio.CancelledError:
                await _kill_group(proc)
                raise
            finally:
                self._groups.discard(proc.pid)
            code = proc.returncode
            if code:
                how = f"exit {code}" if code > 0 else f"killed by signal {-code}"
                tail = _tail(stderr)
                return f"{how}: {tail}" if tail else how
        log.debug("alert hook ran for alert #%d", view.id)
        return ""

    # -- reporting ------------------------------------------------------------------------

    def _report_drops(self) -> None:
        if self._dropped:
            count, self._dropped = self._dropped, 0
            self._warn(f"alert hook skipped {count} alert(s): {self.max_running} commands were running and "
                       f"{self.max_waiting} alerts waiting", {"dropped": count})

    def _warn(self, message: str, payload: dict) -> None:
        """To the log file and the engine's events; a warning, not an alert (see the module doc)."""
        log.warning(message, extra={"context": {"command": self.command, **payload}})
        self.engine.note("warning", "alerts", message, payload=payload)


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the command's process group, then SIGKILL whatever is left after a short grace
    (what ignored SIGTERM or outlived the shell), even if stop() cancels the wait."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        await _ended(proc)
    finally:
        _signal_group(proc.pid, signal.SIGKILL)
    await _ended(proc)


async def _ended(proc: asyncio.subprocess.Process) -> None:
    """Wait up to TERM_GRACE_S for the command to end (not longer: a process that left the
    group, with setsid, may still hold its stdin open)."""
    try:
        async with asyncio.timeout(TERM_GRACE_S):
            await proc.wait()
    except TimeoutError:
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:  # every process of the group is gone already
        pass


def _tail(file) -> str:
    """The last STDERR_TAIL characters the command wrote to the file."""
    size = file.seek(0, os.SEEK_END)
    file.seek(max(0, size - 4 * STDERR_TAIL))
    return file.read().decode(errors="replace").strip()[-STDERR_TAIL:]


def _alerts(ids: list[int]) -> str:
    return ", ".join(f"alert #{i}" for i in ids)


def _one_line(text: str) -> str:
    return " ".join(text.split())
