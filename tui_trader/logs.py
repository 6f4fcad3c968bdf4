"""Logging: JSON lines in the data directory (rotated by size); the headless engine also
writes warnings to stderr. The Logs screen reads the engine's events, not this file."""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import datetime, timezone

from .locations import log_file


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level: str, to_stdout: bool = False) -> None:
    root = logging.getLogger()
    root.setLevel(level.upper())
    # Alembic logs INFO lines when imported and at every database open; services.store.schema
    # logs the migrations it runs.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3)
        handler.setFormatter(JsonLines())
        root.addHandler(handler)
    except OSError as exc:
        print(f"tui-trader: cannot write the log file {path} ({exc.strerror}); logging to stderr", file=sys.stderr)
        root.addHandler(logging.StreamHandler(sys.stderr))
    if to_stdout:
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.WARNING)
        console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(console)
