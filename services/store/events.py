"""The event history in SQL: the same filter as services.event_log.EventQuery, paging by
id, and retention. These open their own connection from the engine's pool, so they run
in a worker thread (or another process) without touching the store's write connection."""

from __future__ import annotations

from typing import Iterator

from sqlalchemy import and_, delete, func, or_, select, true
from sqlalchemy.engine import Engine

from ..event_log import EventQuery, event_from_row, levels_from
from ..views import EventView
from .tables import EventRow

EVENTS = EventRow.__table__

PURGE_BATCH = 5000
"""Rows deleted per transaction: the engine's own writes wait for at most one batch."""


def _where(query: EventQuery, before_id: int | None = None, after_id: int | None = None):
    e = EVENTS.c
    conds = []
    if query.min_level:
        conds.append(e.level.in_(levels_from(query.min_level)))
    if query.category:
        conds.append(e.category == query.category)
    if query.strategy:
        conds.append(e.strategy_id == query.strategy)
    if query.symbol:
        conds.append(e.symbol == query.symbol)
    if query.since is not None:
        conds.append(e.ts >= query.since)
    if query.unread_only:
        conds.append(and_(e.needs_ack.is_(True), e.acked_at.is_(None)))
    if query.text:
        conds.append(or_(*(col.icontains(query.text, autoescape=True)
                           for col in (e.message, e.category, e.strategy_id, e.symbol))))
    if before_id is not None:
        conds.append(e.id < before_id)
    if after_id is not None:
        conds.append(e.id > after_id)
    return and_(true(), *conds)


def read_events(engine: Engine, query: EventQuery, *, before_id: int | None = None, after_id: int | None = None,
                limit: int = 200, newest_first: bool = True) -> list[EventView]:
    """Up to `limit` matching events below before_id / above after_id."""
    order = EVENTS.c.id.desc() if newest_first else EVENTS.c.id.asc()
    stmt = select(EVENTS).where(_where(query, before_id, after_id)).order_by(order).limit(limit)
    with engine.connect() as conn:
        return [event_from_row(r._mapping) for r in conn.execute(stmt)]


def iter_events(engine: Engine, query: EventQuery, *, up_to_id: int | None = None, batch: int = 2000) -> Iterator[EventView]:
    """Every matching event, oldest first, read in batches (for exports)."""
    after = None
    while True:
        rows = read_events(engine, query, after_id=after, limit=batch, newest_first=False)
        for e in rows:
            if up_to_id is not None and e.id > up_to_id:
                return
            yield e
        if len(rows) < batch:
            return
        after = rows[-1].id


def purge_events(engine: Engine, cutoff_ts: float, max_rows: int) -> int:
    """Delete events older than cutoff_ts, then the oldest beyond max_rows; unread alerts
    are kept either way. Returns how many were deleted."""
    e = EVENTS.c
    keep_unread = or_(e.needs_ack.is_(False), e.acked_at.is_not(None))
    with engine.connect() as conn:
        newest = conn.execute(select(func.max(e.id))).scalar() or 0
        floor = conn.execute(  # the newest row beyond max_rows
            select(e.id).order_by(e.id.desc()).offset(max_rows).limit(1)).scalar()
    targets = [e.ts < cutoff_ts]
    if floor is not None:
        targets.append(e.id <= floor)
    batch = select(e.id).where(or_(*targets), keep_unread, e.id <= newest).order_by(e.id).limit(PURGE_BATCH)
    deleted = 0
    while True:
        with engine.begin() as conn:
            count = conn.execute(delete(EVENTS).where(e.id.in_(batch.scalar_subquery()))).rowcount
        deleted += count
        if count < PURGE_BATCH:
            return deleted
