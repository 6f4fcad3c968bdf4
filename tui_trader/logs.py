"""Logging: JSON lines in the data directory, rotated by size; the headless engine also
writes warnings to stderr. The Logs screen reads the engine's events, not this file.

One object per line: time (UTC, ms), level, logger, event (the message), context (what a
caller passed as `extra={"context": {...}}`) and traceback (with exc_info). A line is
formatted where it is logged and written by a listener thread, so the event loop never
waits on the disk; stop_logging() (also run at exit) writes what is still queued."""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from .locations import log_file

EVENTS_LOGGER = "tui_trader.events"
"""Engine events mirrored into the file (mirror_events)."""

_installed: list[logging.Handler] = []  # on the root logger, by setup_logging
_listener: logging.handlers.QueueListener | None = None


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        context = getattr(record, "context", None)
        if context:
            entry["context"] = context
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)  # an odd value in a context must not lose the line


class _ReportsFailures(logging.Handler):
    """A handler that cannot write (a full disk, a closed stderr) says so on stderr in one line,
    again at most every REPORT_EVERY_S with the count of lines lost, instead of logging's
    traceback per record (hundreds a minute, into the operator's terminal)."""

    REPORT_EVERY_S = 600.0
    _lost = 0
    _reported_at: float | None = None

    def handleError(self, record: logging.LogRecord | None) -> None:
        self._lost += 1
        now = time.monotonic()
        if self._reported_at is not None and now - self._reported_at < self.REPORT_EVERY_S:
            return
        self._reported_at = now
        exc = sys.exc_info()[1]
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else repr(exc)
        where = getattr(self, "baseFilename", "to stderr")
        if self._lost == 1:
            text = (f"cannot write {where} ({reason}); log lines are lost until it works again (said again at "
                    f"most every {self.REPORT_EVERY_S / 60:.0f} minutes)")
        else:
            text = f"still cannot write {where} ({reason}); {self._lost} log line(s) lost so far"
        try:
            sys.stderr.write(f"tui-trader: {text}\n")
            sys.stderr.flush()
        except (OSError, ValueError):  # stderr is gone too: nobody to tell
            pass

    def close(self) -> None:
        try:
            super().close()  # flushes: the last lines can fail too
        except (OSError, ValueError):
            self.handleError(None)


class _FileHandler(_ReportsFailures, logging.handlers.RotatingFileHandler):
    pass


class _StderrHandler(_ReportsFailures, logging.StreamHandler):
    pass


def setup_logging(level: str, to_stdout: bool = False, *, path: Path | None = None, max_bytes: int = 5_000_000,
                  backups: int = 3) -> None:
    """Log at `level` and above to `path` (default: tui_trader.log in the data directory),
    rotated at max_bytes keeping `backups` old files; with to_stdout, warnings also go to
    stderr. Calling it again replaces what the previous call installed."""
    global _listener
    stop_logging()
    root = logging.getLogger()
    root.setLevel(level.upper())
    # Alembic logs INFO lines when imported and at every database open; services.store.schema
    # logs the migrations it runs.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    path = path or log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        target: logging.Handler = _FileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    except OSError as exc:
        print(f"tui-trader: cannot write the log file {path} ({exc.strerror}); logging to stderr", file=sys.stderr)
        target = _StderrHandler(sys.stderr)
    # The queue handler formats (so a line shows its values as they were when logged); the
    # listener thread only writes.
    target.setFormatter(logging.Formatter("%(message)s"))
    lines: queue.SimpleQueue = queue.SimpleQueue()
    to_file = logging.handlers.QueueHandler(lines)
    to_file.setFormatter(JsonLines())
    _installed.append(to_file)
    _listener = logging.handlers.QueueListener(lines, target)
    _listener.start()
    if to_stdout:
        console = _StderrHandler(sys.stderr)
        console.setLevel(logging.WARNING)
        console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        # The headless engine prints every event itself.
        console.addFilter(lambda record: record.name != EVENTS_LOGGER)
        _installed.append(console)
    for handler in _installed:
        root.addHandler(handler)


def stop_logging() -> None:
    """Write everything still queued, close the file and remove the handlers setup_logging
    installed. Safe to call more than once."""
    global _listener
    root = logging.getLogger()
    for handler in _installed:
        root.removeHandler(handler)
    _installed.clear()
    if _listener is not None:
        _listener.stop()  # returns once the thread has written every queued line
        for handler in _listener.handlers:
            handler.close()
        _listener = None


atexit.register(stop_logging)


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
           "critical": logging.CRITICAL}


def mirror_events(engine) -> None:
    """Write every engine event to the log file too (logger tui_trader.events, at the
    event's level), so the file tells the whole story next to the programmer's logs."""
    events = logging.getLogger(EVENTS_LOGGER)

    def write(view) -> None:
        context = {"id": view.id, "category": view.category, "strategy": view.strategy_id, "symbol": view.symbol,
                   "position": view.group_id, "alert": view.needs_ack, "payload": dict(view.payload) or None}
        events.log(_LEVELS.get(view.level, logging.INFO), view.message,
                   extra={"context": {k: v for k, v in context.items() if v is not None}})

    engine.event_listeners.append(write)
