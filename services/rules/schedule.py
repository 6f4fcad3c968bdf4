"""Entry schedules: when a strategy may enter and when its position is planned to exit.

Everything here is a pure function of a `ScheduleConfig` and instants in epoch seconds
(no wall clock is read). Times of day are wall-clock times in the schedule's IANA
timezone; weekdays are evaluated in that timezone too, never in UTC.

Windows. Every entry time on every scheduled weekday opens an *entry window* that
starts at that instant. A window ends

* at `entry_window_end` of the same local day, when it is set (the windows of one day
  then overlap and share that end), or
* at the next scheduled entry instant (possibly days later), when it is not: without a
  window end the windows tile the whole timeline.

A window is half-open, `[start, end)`. A strategy may enter at most once per window
(`entry_due`).

Daylight-saving edges (one rule for every local time of day this module turns into an
instant: entry times, the window end, the exit time):

* A time that does not exist on a spring-forward day (02:30 in New York on 2026-03-08)
  maps to the first valid instant after the gap, the transition itself (03:00 EDT).
  Several times inside one gap therefore map to the same instant and open one window;
  a window whose start and `entry_window_end` both fall in the gap is empty: it does
  not open that day.
* A time that occurs twice on a fall-back day (01:30 in New York on 2026-11-01) uses its
  first occurrence (fold=0), and only that one: the second 01:30 opens no window.

Durations are real elapsed seconds (epoch arithmetic), so a countdown across a DST
change is the true time left, not the difference of wall-clock readings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday names in the order of `date.weekday()` (Monday = 0)."""

_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_time_of_day(raw: object) -> str:
    """ "9:30" or "09:30" (24-hour clock), or a TOML local time 09:30:00 -> "09:30";
    anything else is an error naming the value."""
    if isinstance(raw, time) and raw.tzinfo is None and raw.second == 0 and raw.microsecond == 0:
        return f"{raw.hour:02d}:{raw.minute:02d}"
    if isinstance(raw, str):
        match = _HHMM.match(raw.strip())
        if match:
            return f"{int(match.group(1)):02d}:{match.group(2)}"
    raise ValueError(f"{raw!r} is not a time of day: use HH:MM on the 24-hour clock, 00:00 to 23:59")


def parse_weekday(raw: object) -> str:
    """ "mon" .. "sun" (or the full name), any case -> "mon" .. "sun"."""
    if isinstance(raw, str):
        name = raw.strip().lower()
        if name in WEEKDAYS:
            return name
        if name in _FULL_NAMES:
            return WEEKDAYS[_FULL_NAMES.index(name)]
    raise ValueError(f"unknown weekday {raw!r} (use {', '.join(WEEKDAYS)})")


def parse_timezone(raw: object) -> str:
    """An IANA timezone name that zoneinfo knows, such as "Europe/Paris" or "UTC"."""
    if isinstance(raw, str) and raw.strip():
        name = raw.strip()
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
        else:
            return name
    raise ValueError(f"unknown timezone {raw!r} (use an IANA name like Europe/Paris)")


def _one_or_many(raw: object) -> object:
    return [raw] if isinstance(raw, str) else raw


TimeOfDay = Annotated[str, BeforeValidator(parse_time_of_day)]
Weekday = Annotated[str, BeforeValidator(parse_weekday)]


class ScheduleConfig(BaseModel):
    """When a strategy enters (entry windows) and when it plans to exit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entry_times: Annotated[list[TimeOfDay], BeforeValidator(_one_or_many)] = Field(min_length=1)
    """Times of day ("HH:MM", 24-hour) at which an entry window opens; sorted, duplicates dropped."""
    every_minutes: int | None = Field(None, ge=1, le=720)
    """Instead of entry_times: a window opens every this many minutes from midnight."""
    weekdays: Annotated[list[Weekday], BeforeValidator(_one_or_many)] = Field(
        default_factory=lambda: list(WEEKDAYS), min_length=1
    )
    """Days on which the entry times apply ("mon" .. "sun"), in the schedule's timezone. Default: every day."""
    timezone: Annotated[str, BeforeValidator(parse_timezone)] = "UTC"
    """IANA timezone of the times of day and the weekdays, e.g. "America/New_York"."""
    entry_window_end: TimeOfDay | None = None
    """No entry after this time of day ("HH:MM", same day); unset: a window lasts until the next entry time."""
    exit_time: TimeOfDay | None = None
    """Planned exit at this time of day: the first time it comes round after the entry (same day, or the next
    day when it is not later than the entry's time of day)."""
    exit_after_s: float | None = Field(None, gt=0, allow_inf_nan=False)
    """Planned exit this many seconds after the entry (real elapsed time). Exclusive with exit_time."""

    @model_validator(mode="before")
    @classmethod
    def _expand_every(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("every_minutes") is not None:
            if data.get("entry_times") is not None:
                raise ValueError("set either entry_times or every_minutes, not both")
            step = data["every_minutes"]
            if isinstance(step, int) and not isinstance(step, bool) and 1 <= step <= 720:
                data = {**data, "entry_times": [f"{m // 60:02d}:{m % 60:02d}" for m in range(0, 24 * 60, step)]}
        return data

    @field_validator("entry_times")
    @classmethod
    def _sorted_unique(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @field_validator("weekdays")
    @classmethod
    def _week_order(cls, value: list[str]) -> list[str]:
        return [day for day in WEEKDAYS if day in value]

    @field_validator("entry_window_end")
    @classmethod
    def _after_entry_times(cls, value: str | None, info: ValidationInfo) -> str | None:
        times = info.data.get("entry_times")
        if value is not None and times:
            early = [t for t in times if t >= value]
            if early:
                raise ValueError(
                    f"entry_window_end {value} must be later than every entry time "
                    f"({', '.join(early)} {'is' if len(early) == 1 else 'are'} not)"
                )
        return value

    @field_validator("exit_after_s")
    @classmethod
    def _one_exit_rule(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("exit_time") is not None:
            raise ValueError("set either exit_time or exit_after_s, not both")
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The timezone as a tzinfo (zoneinfo caches instances)."""
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class Window:
    """An entry window, half-open: an entry is allowed at `start <= t < end` (epoch seconds)."""

    start: float
    end: float


# --- local wall time -> instant ------------------------------------------------------------


def _wall(t: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(t, zone).replace(tzinfo=None)


@lru_cache(maxsize=4096)
def local_instant(day: date, hhmm: str, tz_name: str) -> float:
    """The instant (epoch seconds) of wall time `hhmm` on local date `day` in `tz_name`.

    A wall time skipped by a spring-forward gap maps to the first valid instant after
    the gap (the transition); a repeated wall time (fall-back) maps to its first
    occurrence (fold=0).
    """
    zone = ZoneInfo(tz_name)
    hour, minute = map(int, hhmm.split(":"))
    wall = datetime.combine(day, time(hour, minute))
    first = wall.replace(tzinfo=zone, fold=0).timestamp()
    second = wall.replace(tzinfo=zone, fold=1).timestamp()
    if first <= second:  # unique, or ambiguous (first occurrence is the earlier instant)
        return first
    # In a gap: fold=1 reads it with the offset after the change (an instant before the
    # transition), fold=0 with the offset before (after it). The transition is the first
    # instant whose wall time is not before `wall`; transitions fall on whole seconds.
    lo, hi = int(second), int(first)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _wall(mid, zone) >= wall:
            hi = mid
        else:
            lo = mid
    return float(hi)


def _local_date(t: float, tz_name: str) -> date:
    return datetime.fromtimestamp(t, ZoneInfo(tz_name)).date()


@lru_cache(maxsize=4096)
def _day_starts(
    day: date, times: tuple[str, ...], weekdays: tuple[str, ...], tz_name: str, window_end: str | None
) -> tuple[float, ...]:
    """Distinct, ascending window starts of one local date (none on an unscheduled weekday,
    none whose window would be empty because it and the window end share a DST gap)."""
    if WEEKDAYS[day.weekday()] not in weekdays:
        return ()
    starts = sorted({local_instant(day, t, tz_name) for t in times})
    if window_end is not None:
        end = local_instant(day, window_end, tz_name)
        starts = [s for s in starts if s < end]
    return tuple(starts)


def _starts(cfg: ScheduleConfig, day: date) -> tuple[float, ...]:
    return _day_starts(day, tuple(cfg.entry_times), tuple(cfg.weekdays), cfg.timezone, cfg.entry_window_end)


_SCAN_DAYS = 9  # a valid config has a window at least once a week; one extra day each side for DST/date-line slack


def _latest_start_at_or_before(cfg: ScheduleConfig, t: float) -> tuple[float, date] | None:
    day = _local_date(t, cfg.timezone) + timedelta(days=1)
    for back in range(_SCAN_DAYS + 1):
        d = day - timedelta(days=back)
        earlier = [s for s in _starts(cfg, d) if s <= t]
        if earlier:
            return earlier[-1], d
    return None


def _earliest_start_at_or_after(cfg: ScheduleConfig, t: float, strict: bool = False) -> float | None:
    day = _local_date(t, cfg.timezone) - timedelta(days=1)
    for ahead in range(_SCAN_DAYS + 1):
        later = [s for s in _starts(cfg, day + timedelta(days=ahead)) if (s > t if strict else s >= t)]
        if later:
            return later[0]
    return None


# --- public API ------------------------------------------------------------------------------


def next_entry(cfg: ScheduleConfig, now: float) -> float | None:
    """The next scheduled entry instant at or after `now` (the start of the next window;
    `now` itself when a window starts exactly then). Weekdays are the schedule's local
    weekdays. Never None for a valid config; `next_entry(cfg, now) - now` is the
    countdown to the entry in real seconds."""
    return _earliest_start_at_or_after(cfg, now)


def window_at(cfg: ScheduleConfig, t: float) -> Window | None:
    """The entry window containing `t`, or None when `t` is in none.

    With overlapping windows (an entry_window_end and several entry times) this is the
    most recent one, the window with the latest start <= t. Without an entry_window_end
    every instant is in some window and its end is the next entry instant."""
    found = _latest_start_at_or_before(cfg, t)
    if found is None:
        return None
    start, day = found
    if cfg.entry_window_end is not None:
        end = local_instant(day, cfg.entry_window_end, cfg.timezone)
    else:
        end = _earliest_start_at_or_after(cfg, start, strict=True)
        if end is None:  # pragma: no cover - impossible for a valid config
            return None
    return Window(start, end) if start <= t < end else None


def window_of(cfg: ScheduleConfig, t: float) -> float | None:
    """The start of the entry window containing `t` (see `window_at`), or None."""
    window = window_at(cfg, t)
    return window.start if window is not None else None


def entry_due(cfg: ScheduleConfig, now: float, last_entry_at: float | None) -> float | None:
    """Whether the schedule allows an entry at `now`: the start of the current window when
    `now` is inside a window and no entry was made in it (`last_entry_at` is None or
    before the window's start), else None.

    The engine records the instant of each entry it makes (`last_entry_at`, persisted so
    a restart does not enter the same window again) and calls this on every check: a
    window is therefore used at most once, an entry that could not be made yet (stale
    quote, no slot, still live from an earlier window) stays due until the window ends,
    and a missed window is never made up after its end. Note that without an
    entry_window_end the current window lasts until the next entry time, so a strategy
    started (with no last entry) any time after its last entry time is due at once."""
    start = window_of(cfg, now)
    if start is None or (last_entry_at is not None and last_entry_at >= start):
        return None
    return start


def planned_exit(cfg: ScheduleConfig, entered_at: float) -> float | None:
    """The planned exit instant of a position entered at `entered_at`, or None without a
    planned exit.

    exit_after_s: `entered_at + exit_after_s` (real elapsed seconds, DST-proof).
    exit_time: the first instant strictly after `entered_at` whose local wall time is
    exit_time (with the DST rules above): the same local day when exit_time is later than
    the entry's local time of day, else the next day. Weekdays do not apply to exits."""
    if cfg.exit_after_s is not None:
        return entered_at + cfg.exit_after_s
    if cfg.exit_time is None:
        return None
    day = _local_date(entered_at, cfg.timezone)
    for ahead in range(3):
        at = local_instant(day + timedelta(days=ahead), cfg.exit_time, cfg.timezone)
        if at > entered_at:
            return at
    return None  # pragma: no cover - a wall time recurs within two days in every zone


def session_bounds(t: float, start: str, tz_name: str) -> tuple[float, float]:
    """The trading day containing instant t: [the latest `start` wall time at or before t,
    the next one). The same DST rules as entry times apply, so a day may last 23 or 25 hours."""
    day = _local_date(t, tz_name)
    begin = local_instant(day, start, tz_name)
    if begin > t:
        day -= timedelta(days=1)
        begin = local_instant(day, start, tz_name)
    end = local_instant(day + timedelta(days=1), start, tz_name)
    if end <= begin:  # a start inside a gap can map two days onto one instant
        end = local_instant(day + timedelta(days=2), start, tz_name)
    return begin, end
