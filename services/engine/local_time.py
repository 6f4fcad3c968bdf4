"""A time as the operator reads it in an event: weekday, hour and minute in a time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def local_time(t: float, tz: str) -> str:
    return datetime.fromtimestamp(t, ZoneInfo(tz)).strftime(f"%a %H:%M {tz}")
