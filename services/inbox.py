"""What the inboxes other processes post into have in common (`signal_inbox`, `command_inbox`).

A shell command inserts a row (its id assigned by the database) in one short transaction.
The engine's lock file is advisory for engines only; SQLite in WAL mode lets the poster
write while an engine runs.

`Inbox` is an engine attachment (`engine.attachments`): started after the engine, it polls
its table every `poll_interval_s`. Database reads and writes run in a worker thread
(`asyncio.to_thread`); each pending row is decided on the loop, where the engine's commands
run. A decided outcome is kept in memory until it is recorded on its row, so a database
error is logged and retried on the next poll, never stops the engine and never makes the
engine act on a row twice. The SQL is the store's (services/store/inboxes.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .store.inboxes import open_inbox_database
from .store.sql import Database, StoreError


class Inbox:
    """Engine attachment polling one inbox table. A subclass reads the pending rows
    (`_read_pending`, worker thread), decides each one (`_decide`, on the loop: an outcome,
    or None to leave the row pending for now) and records the outcomes (`_write`, worker
    thread). Outcomes are keyed by row id until recorded."""

    label = "inbox"  # names the poll task and starts its log lines
    unrecorded_at_stop = ""  # what becomes of outcomes still unrecorded when the engine stops

    def __init__(self, url: str, poll_interval_s: float, log: logging.Logger) -> None:
        self.url = url
        self.poll_interval_s = poll_interval_s
        self.log = log
        self.engine = None
        self._db: Database | None = None
        self._unwritten: dict[int, Any] = {}  # decided, not yet recorded on the row
        self._failing = False
        self._stopping: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    # -- attachment protocol --------------------------------------------------------------

    async def start(self, engine) -> None:
        self.bind(engine)
        self._stopping = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.label.replace(" ", "-"))

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=15)
            except TimeoutError:
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    pass
            except Exception:  # the task already logged what went wrong
                pass
            self._task = None
        if self._unwritten:
            await self._write_unwritten()
            if self._unwritten:
                self.log.error("stopping with %d outcome(s) not recorded on the %s (ids %s); %s",
                               len(self._unwritten), self.label, sorted(self._unwritten), self.unrecorded_at_stop)
        if self._db is not None:
            self._db.dispose()
            self._db = None

    def bind(self, engine) -> None:
        """Attach to an engine without starting the poll task (tests call poll_once())."""
        self.engine = engine

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.poll_once()
            except Exception:  # a bug here must never take the engine down
                self.log.exception("%s poll failed", self.label)
            try:
                await asyncio.wait_for(self._stopping.wait(), self.poll_interval_s)
            except TimeoutError:
                pass

    # -- one poll -------------------------------------------------------------------------

    async def poll_once(self) -> int:
        """Read the pending rows and handle each one; returns how many were decided."""
        if self._unwritten:
            await self._write_unwritten()
        try:
            rows, context = await asyncio.to_thread(self._read_pending)
        except StoreError as exc:
            self._db_failed("read", exc)
            return 0
        decided = 0
        for row in rows:
            if row["id"] in self._unwritten:
                continue
            outcome = self._decide(row, context)
            if outcome is not None:
                self._unwritten[row["id"]] = outcome
                decided += 1
        if decided:
            await self._write_unwritten()
        return decided

    def _read_pending(self) -> tuple[list[dict], Any]:
        """Worker thread: the pending rows, oldest first, and what _decide needs besides."""
        raise NotImplementedError

    def _decide(self, row: dict, context: Any) -> Any | None:
        """On the loop: the outcome of one pending row, or None to leave it pending for now."""
        raise NotImplementedError

    def _write(self, batch: list) -> None:
        """Worker thread: record these outcomes on their rows, in one transaction."""
        raise NotImplementedError

    # -- database (worker thread) ---------------------------------------------------------

    def _database(self) -> Database:
        if self._db is None:
            self._db = open_inbox_database(self.url)
        return self._db

    async def _write_unwritten(self) -> None:
        batch = list(self._unwritten.items())
        try:
            await asyncio.to_thread(self._write, [outcome for _, outcome in batch])
        except StoreError as exc:
            self._db_failed("write", exc)
            return
        for row_id, _ in batch:
            self._unwritten.pop(row_id, None)
        if self._failing:
            self._failing = False
            self.log.warning("%s: the database is back; %d outcome(s) recorded", self.label, len(batch))

    def _db_failed(self, what: str, exc: Exception) -> None:
        message = str(exc).splitlines()[0][:200]
        if not self._failing:
            self._failing = True
            self.log.error("%s: database %s failed (%s); retrying every %g s", self.label, what, message,
                           self.poll_interval_s)
        else:
            self.log.debug("%s: database %s still failing: %s", self.label, what, message)
