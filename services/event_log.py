"""The engine's event history as the operator searches it: the filter of the Logs screen
and `tui-trader logs`, and the files an export writes. Matching here and in SQL
(services.store.events) must agree: tests check both against the same events."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from .views import EventView

LEVELS = ("debug", "info", "warning", "error", "critical")
_RANK = {name: i for i, name in enumerate(LEVELS)}

EXPORT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}
"""File suffix -> format of an export."""

CSV_COLUMNS = ("id", "time", "level", "category", "strategy", "symbol", "position", "message", "alert", "acked_at",
               "payload")


def level_rank(level: str) -> int:
    return _RANK.get(level, _RANK["info"])


def levels_from(min_level: str) -> tuple[str, ...]:
    """The levels at or above min_level (what a level filter keeps)."""
    return LEVELS[level_rank(min_level):]


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which events to show. Empty fields do not filter."""

    min_level: str = ""
    """This level and above ("warning" keeps warning, error and critical)."""
    category: str = ""
    strategy: str = ""
    symbol: str = ""
    text: str = ""
    """Case-insensitive, anywhere in the message, category, strategy or symbol."""
    since: float | None = None
    """Events at or after this time (epoch seconds)."""
    unread_only: bool = False
    """Only alerts not acknowledged yet."""

    def matches(self, e: EventView) -> bool:
        if self.min_level and level_rank(e.level) < level_rank(self.min_level):
            return False
        if self.category and e.category != self.category:
            return False
        if self.strategy and e.strategy_id != self.strategy:
            return False
        if self.symbol and e.symbol != self.symbol:
            return False
        if self.since is not None and e.ts < self.since:
            return False
        if self.unread_only and not e.unread:
            return False
        if self.text:
            needle = self.text.casefold()
            return any(needle in (field or "").casefold() for field in (e.message, e.category, e.strategy_id, e.symbol))
        return True

    @property
    def active(self) -> bool:
        return bool(self.min_level or self.category or self.strategy or self.symbol or self.text
                    or self.since is not None or self.unread_only)

    def describe(self) -> str:
        """The filters in words, for titles and prompts ("" when nothing filters)."""
        parts = []
        if self.min_level:
            parts.append(f"level ≥ {self.min_level}")
        for name, value in (("category", self.category), ("strategy", self.strategy), ("symbol", self.symbol)):
            if value:
                parts.append(f"{name} {value}")
        if self.text:
            parts.append(f'"{self.text}"')
        if self.since is not None:
            parts.append(f"since {iso_time(self.since)}")
        if self.unread_only:
            parts.append("unread alerts")
        return ", ".join(parts)


def iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


def event_from_row(row: Mapping[str, Any]) -> EventView:
    """An EventView from a strategy_events row (the database's or a record's)."""
    return EventView(row["id"], row["ts"], row["level"], row["category"], row["message"], row["strategy_id"],
                     row["symbol"], row["group_id"], bool(row["needs_ack"]), row["acked_at"], row["payload"] or {})


def event_dict(e: EventView) -> dict[str, Any]:
    """One event as a JSON object (exports, `tui-trader logs --json`)."""
    return {
        "id": e.id, "time": iso_time(e.ts), "ts": e.ts, "level": e.level, "category": e.category,
        "strategy": e.strategy_id, "symbol": e.symbol, "position": e.group_id, "message": e.message,
        "alert": e.needs_ack, "acked_at": iso_time(e.acked_at) if e.acked_at is not None else None,
        "payload": dict(e.payload),
    }


def export_format(path: Path) -> str | None:
    """"csv" or "jsonl" from the file's suffix; None when the suffix says neither."""
    return EXPORT_FORMATS.get(path.suffix.lower())


def write_export(path: Path, events: Iterable[EventView]) -> int:
    """Write events (oldest first) as CSV or JSON lines, by the path's suffix; returns how
    many. Raises ValueError for an unknown suffix, OSError when the file cannot be written."""
    fmt = export_format(path)
    if fmt is None:
        raise ValueError(f"{path.name}: end the file name with .csv or .jsonl")
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        if fmt == "csv":
            writer = csv.writer(out)
            writer.writerow(CSV_COLUMNS)
            for e in events:
                d = event_dict(e)
                writer.writerow([d["id"], d["time"], d["level"], d["category"], d["strategy"] or "", d["symbol"] or "",
                                 d["position"] if d["position"] is not None else "", d["message"],
                                 "yes" if d["alert"] else "", d["acked_at"] or "",
                                 json.dumps(d["payload"], sort_keys=True) if d["payload"] else ""])
                count += 1
        else:
            for e in events:
                out.write(json.dumps(event_dict(e), sort_keys=True) + "\n")
                count += 1
    return count
