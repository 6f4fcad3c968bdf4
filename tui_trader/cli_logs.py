"""`tui-trader logs`: the engine's events from the database, the same ones the Logs screen
shows, readable while an engine runs in another process; `--follow` keeps printing new ones."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from datetime import datetime, timezone
from typing import Callable, Iterable

from services.event_categories import CATEGORIES
from services.event_log import LEVELS, EventQuery, event_dict
from services.views import EventView

from .usage import UsageError

DEFAULT_LIMIT = 50
MAX_LIMIT = 1_000_000_000
"""Far more than anyone reads; a number above 2**63 would not even fit SQLite's integers."""
POLL_S = 0.5
"""How often --follow looks for new events."""
BATCH = 2000
"""Events read per query."""

SINCE_FORMS = ("a duration back from now (90s, 15m, 2h, 3d), a date or date and time (2026-11-21, "
               "2026-11-21T03:00; UTC unless it has an offset like +01:00) or a time today (03:00, UTC)")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")

_FIRST_DATE = datetime(1, 1, 2, tzinfo=timezone.utc).timestamp()
_LAST_DATE = datetime(9999, 12, 31, tzinfo=timezone.utc).timestamp()
"""A day inside datetime's range at each end: any zone's offset keeps such a time a date."""

_COLOR = {"warning": "\033[33m", "error": "\033[31m", "critical": "\033[1;31m"}
_RESET = "\033[0m"
CONTEXT_WIDTH = 20
"""Room for "strategy symbol #position", so most messages start in the same column."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--level", metavar="LEVEL", help=f"this level and above: {', '.join(LEVELS)}")
    parser.add_argument("--since", metavar="WHEN", help=f"every event since WHEN: {SINCE_FORMS}")
    parser.add_argument("--grep", metavar="TEXT", help="text anywhere in the message, category, strategy or symbol "
                                                       "(any case)")
    parser.add_argument("--category", metavar="NAME", help=f"one category: {', '.join(CATEGORIES)}")
    parser.add_argument("--strategy", metavar="ID", help="one strategy's events")
    parser.add_argument("--symbol", metavar="SYMBOL", help="one symbol's events")
    parser.add_argument("--alerts", action="store_true", help="only alerts not acknowledged yet")
    parser.add_argument("--limit", metavar="N",
                        help=f"the last N matching events (default {DEFAULT_LIMIT}; with --since: all of them)")
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new events; ctrl+c ends it")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")


def parse_since(raw: str, now: float) -> float:
    """--since as epoch seconds; ValueError naming the accepted forms."""
    text = raw.strip()
    if duration := _DURATION.fullmatch(text.lower()):
        since = now - float(duration[1]) * _SECONDS[duration[2]]
    else:
        try:
            if clock := _TIME_OF_DAY.fullmatch(text):
                today = datetime.fromtimestamp(now, timezone.utc)
                when = today.replace(hour=int(clock[1]), minute=int(clock[2]), second=int(clock[3] or 0),
                                     microsecond=0)
            else:
                when = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"--since {raw!r}: expected {SINCE_FORMS}") from None
        since = (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
    if not _FIRST_DATE <= since <= _LAST_DATE:  # a time no date can show
        raise ValueError(f"--since {raw!r}: not a time from year 1 to 9999")
    return since


def event_line(e: EventView, color: bool = False) -> str:
    """One event as a line of text: time (UTC), level, category, where, marker, message."""
    stamp = datetime.fromtimestamp(e.ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    level = e.level.upper()
    pad = " " * (8 - len(level))
    if color and e.level in _COLOR:
        level = f"{_COLOR[e.level]}{level}{_RESET}"
    position = f"#{e.group_id}" if e.group_id is not None else ""
    where = " ".join(part for part in (e.strategy_id, e.symbol, position) if part)
    marker = ("[alert] " if e.unread else "[acked] ") if e.needs_ack else ""
    return f"{stamp} {level}{pad} {e.category:10} {where:{CONTEXT_WIDTH}}  {marker}{e.message}"


def cmd_logs(args, settings) -> int:
    from services.store.urls import is_shared_url

    query, limit = _query(args, time.time())
    url = settings.store.url
    if not is_shared_url(url):
        print(f"tui-trader: store.url {url!r} is an in-memory database: its events end with the engine; use a file "
              "or a server", file=sys.stderr)
        return 1
    try:
        return _show(url, query, limit, args.follow, args.json)
    except KeyboardInterrupt:
        if args.follow:  # how a follow ends
            return 0
        raise


def _query(args, now: float) -> tuple[EventQuery, int | None]:
    """The filter and the --limit (None: every event since --since); UsageError with one
    line per bad option."""

    problems = []
    level = (args.level or "").strip().lower()
    if level and level not in LEVELS:
        problems.append(f"--level {args.level!r}: expected one of {', '.join(LEVELS)}")
    since = None
    if args.since is not None:
        try:
            since = parse_since(args.since, now)
        except ValueError as exc:
            problems.append(str(exc))
    limit = None
    if args.limit is not None:
        try:
            limit = int(args.limit)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            problems.append(f"--limit {args.limit!r}: expected a whole number from 1 to {MAX_LIMIT:,}")
    if problems:
        raise UsageError("\n  ".join(problems))
    query = EventQuery(min_level=level, category=args.category or "", strategy=args.strategy or "",
                       symbol=args.symbol or "", text=args.grep or "", since=since, unread_only=args.alerts)
    return query, limit if limit is not None or since is not None else DEFAULT_LIMIT


def _printer(as_json: bool) -> Callable[[EventView], None]:
    if as_json:
        return lambda e: print(json.dumps(event_dict(e)), flush=True)
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    return lambda e: print(event_line(e, color), flush=True)


def _show(url: str, query: EventQuery, limit: int | None, follow: bool, as_json: bool) -> int:
    from services.store.sql import StoreError, open_existing
    from services.store.urls import shown_url

    emit = _printer(as_json)
    db = None
    try:
        try:
            db = open_existing(url)
            last_id = _print_all(_initial(db, query, limit), emit)
        except StoreError as exc:
            print(f"tui-trader: cannot read events from {shown_url(url)}: {_first_line(exc)}", file=sys.stderr)
            return 1
        if last_id is None and not as_json:  # said to a person; a program reading JSON gets nothing
            what = f" ({query.describe()})" if query.active else ""
            print(f"no matching events{what}" + ("; waiting for new ones (ctrl+c ends)" if follow else ""),
                  file=sys.stderr, flush=True)
        if follow:
            _follow(db, query, last_id or 0, emit)
        return 0
    finally:
        if db is not None:
            db.dispose()


def _initial(db, query: EventQuery, limit: int | None) -> Iterable[EventView]:
    """What is printed first, oldest first: the last `limit` matches, or (no limit) every
    match, streamed in batches."""
    from services.store.events import iter_events, read_events

    if limit is None:
        return iter_events(db, query, batch=BATCH)
    return reversed(read_events(db, query, limit=limit, newest_first=True))


def _print_all(events: Iterable[EventView], emit) -> int | None:
    """Print the events; the last one's id (None: there was none)."""
    last = None
    for e in events:
        emit(e)
        last = e.id
    return last


def _follow(db, query: EventQuery, after_id: int, emit) -> None:
    """Print events newer than after_id as they are recorded, until ctrl+c. A database that
    is locked or gone for a while is retried, the trouble reported once on stderr."""
    from services.store.events import read_events
    from services.store.sql import StoreError

    failing = False
    while True:
        try:
            new = read_events(db, query, after_id=after_id, limit=BATCH, newest_first=False)
        except StoreError as exc:
            if not failing:
                print(f"tui-trader: cannot read the database ({_first_line(exc)}); retrying", file=sys.stderr,
                      flush=True)
            failing = True
            time.sleep(POLL_S)
            continue
        if failing:
            print("tui-trader: the database can be read again", file=sys.stderr, flush=True)
            failing = False
        after_id = _print_all(new, emit) or after_id
        if len(new) < BATCH:  # caught up: wait for more
            time.sleep(POLL_S)


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
