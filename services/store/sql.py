"""The SQL store (SQLite by default, any SQLAlchemy URL works).

Critical writes (orders, fills, level changes, lifecycle, events) are committed by write()
before the engine acts on them: one short transaction, SQLite in WAL mode with
synchronous=NORMAL, which survives kill -9 (not power loss). Marks are write-behind:
touch() records the row as dirty and a background thread writes each dirty row at most
once per flush interval. If the database fails, writes queue in memory in order, the
engine is told (it raises an alert), and the queue is retried until it lands."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from typing import Callable, Iterable, Iterator

from sqlalchemy import bindparam, create_engine, event, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ..domain import Record
from ..event_log import EventQuery
from ..views import EventView
from . import events, schema
from .loaded import LoadedState
from .tables import (
    PRIMARY_KEY, TABLES, EventRow, LegRow, OrderRow, PnlStateRow, PositionGroupRow, QueuedSignalRow, StrategyRunRow,
    StrategyStateRow,
)

log = logging.getLogger(__name__)


class StoreLockedError(RuntimeError):
    """Another engine process holds this database."""


def _sqlite_path(url: str) -> str | None:
    if url.startswith("sqlite:///") and ":memory:" not in url:
        return url[len("sqlite:///"):]
    return None


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            # Checkpoints (which fsync) run on the write-behind thread, never inside a
            # commit on the event loop: see SqlStore._checkpoint.
            cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        return eng
    return create_engine(url, pool_pre_ping=True)


def open_store_readonly(url: str) -> Engine:
    """For shell commands that read while an engine may be running in another process (the
    schema is migrated first, as SqlStore.open does)."""
    eng = make_engine(url)
    try:
        schema.upgrade(eng)
    except Exception:  # an inbox poller retries this: leak no pool per attempt
        eng.dispose()
        raise
    return eng


def engine_running(url: str) -> bool | None:
    """Whether an engine holds this SQLite database's lock file (None: not a SQLite file, so
    no way to tell). A non-blocking probe: an engine starting in that very instant is told
    another one is running."""
    path = _sqlite_path(url)
    if not path:
        return None
    try:
        with open(path + ".lock") as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(probe, fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False


class SqlStore:
    def __init__(self, url: str, flush_interval_s: float = 1.0,
                 on_failure: Callable[[str], None] | None = None,
                 on_recovery: Callable[[int], None] | None = None) -> None:
        self.url = url
        self.flush_interval_s = flush_interval_s
        self.on_failure = on_failure
        self.on_recovery = on_recovery
        self.ok = True
        self.error = ""
        self.engine: Engine | None = None
        self._conn = None
        self._lock = threading.Lock()
        self._queue: list[Record] = []  # critical writes not yet committed (only during an outage)
        self._dirty: dict[tuple[str, object], Record] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_file = None

    # -- lifecycle -------------------------------------------------------------------------

    def open(self, day_start: float = 0.0) -> LoadedState:
        self._take_process_lock()
        self.engine = make_engine(self.url)
        schema.upgrade(self.engine)
        return self._load(day_start)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._flush_loop, name="store-write-behind", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()
        if self._queue:  # nothing is dropped silently
            log.error("closing with %d write(s) not committed: the database is still failing (%s)",
                      len(self._queue), self.error)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.engine is not None:
            self._checkpoint("TRUNCATE")
            self.engine.dispose()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _take_process_lock(self) -> None:
        path = _sqlite_path(self.url)
        if not path:
            return
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._lock_file = open(path + ".lock", "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            self._lock_file = None
            raise StoreLockedError(
                f"another tui-trader engine is running on {path}; stop it first, "
                "or give this one its own database with store.url"
            ) from None

    # -- writes ----------------------------------------------------------------------------

    def write(self, records: Iterable[Record]) -> None:
        """Commit these records now (in order). During an outage they queue in memory."""
        with self._lock:
            self._queue.extend(records)
            self._commit_queue()

    def touch(self, record: Record) -> None:
        """Write this record behind, at most once per flush interval."""
        self._dirty[(record.KIND, record.id)] = record

    def flush(self) -> None:
        with self._lock:
            self._commit_queue()
            # Critical writes still queued: the outage is not over. An outage that only the
            # write-behind saw (no critical write since) is retried here, or it never ends.
            if self._queue or not self._dirty:
                return
            # touch() runs on the engine thread without the lock: copy the swapped-out dict
            # in one step instead of iterating it while a late touch() may still insert.
            swapped, self._dirty = self._dirty, {}
            dirty = list(swapped.items())
            by_kind: dict[str, list[dict]] = {}
            for _, rec in dirty:
                if rec.saved:  # not yet inserted: the critical write that inserts it carries it
                    by_kind.setdefault(rec.KIND, []).append(rec.row())
            try:
                conn = self._connection()
                with conn.begin():
                    for kind, rows in by_kind.items():
                        _update_many(conn, kind, rows)
            except SQLAlchemyError as exc:
                for key, rec in dirty:
                    self._dirty.setdefault(key, rec)
                self._failed(exc)
                return
            if not self.ok:
                self._recovered(sum(len(rows) for rows in by_kind.values()))

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            try:
                self.flush()
                self._checkpoint("PASSIVE")
            except Exception:  # the write-behind thread must never die silently
                log.exception("write-behind flush failed")

    def _checkpoint(self, mode: str) -> None:
        """Move the WAL into the database file, on a connection of its own and outside the
        write lock: a PASSIVE checkpoint never blocks the writer."""
        if not self.url.startswith("sqlite") or self.engine is None:
            return
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql(f"PRAGMA wal_checkpoint({mode})")
        except SQLAlchemyError as exc:
            log.warning("WAL checkpoint failed: %s", str(exc).splitlines()[0])

    def _commit_queue(self) -> None:
        if not self._queue:
            return
        latest: dict[tuple[str, object], Record] = {}
        for rec in self._queue:
            latest[(rec.KIND, rec.id)] = rec
        inserts: dict[str, list[dict]] = {}
        updates: dict[str, list[dict]] = {}
        for rec in latest.values():
            (updates if rec.saved else inserts).setdefault(rec.KIND, []).append(rec.row())
        try:
            conn = self._connection()
            with conn.begin():
                for kind, rows in inserts.items():
                    conn.execute(TABLES[kind].insert(), rows)
                for kind, rows in updates.items():
                    _update_many(conn, kind, rows)
        except SQLAlchemyError as exc:
            self._failed(exc)
            return
        for rec in latest.values():
            rec.saved = True
        pending = len(self._queue)
        self._queue.clear()
        if not self.ok:
            self._recovered(pending)

    def _recovered(self, pending: int) -> None:
        self.ok, self.error = True, ""
        if self.on_recovery:
            self.on_recovery(pending)

    def _connection(self):
        """The one connection writes go through (callers hold the lock). Reopened after a
        failure, or when the engine behind it was replaced."""
        conn = self._conn
        if conn is None or conn.engine is not self.engine or conn.invalidated or conn.closed:
            if conn is not None:
                try:
                    conn.close()
                except SQLAlchemyError:
                    pass
            conn = self._conn = self.engine.connect()
        return conn

    def _failed(self, exc: Exception) -> None:
        if self._conn is not None:  # start the next attempt on a fresh connection
            try:
                self._conn.close()
            except SQLAlchemyError:
                pass
            self._conn = None
        message = str(exc).splitlines()[0][:200]
        if self.ok:
            self.ok, self.error = False, message
            log.error("database write failed; queueing writes in memory: %s", message)
            if self.on_failure:
                self.on_failure(message)

    # -- history (on a connection of their own: callers run them in a worker thread) ---------

    def read_events(self, query: EventQuery, *, before_id: int | None = None, limit: int = 200) -> list[EventView]:
        return events.read_events(self.engine, query, before_id=before_id, limit=limit)

    def iter_events(self, query: EventQuery, up_to_id: int | None = None) -> Iterator[EventView]:
        return events.iter_events(self.engine, query, up_to_id=up_to_id)

    def purge_events(self, cutoff_ts: float, max_rows: int) -> int:
        return events.purge_events(self.engine, cutoff_ts, max_rows)

    @property
    def pending_writes(self) -> int:
        return len(self._queue)

    # -- start-up --------------------------------------------------------------------------

    def _load(self, day_start: float) -> LoadedState:
        st = LoadedState()
        with self.engine.connect() as conn:
            def rows(stmt):
                return [dict(r._mapping) for r in conn.execute(stmt)]

            st.runs = rows(select(StrategyRunRow.__table__).where(StrategyRunRow.__table__.c.status != "closed"))
            g = PositionGroupRow.__table__
            st.groups = rows(select(g).where(g.c.status != "closed").order_by(g.c.id))
            group_ids = [r["id"] for r in st.groups]
            leg = LegRow.__table__
            # every leg of an open group: a grid's pending and finished layers too
            st.legs = rows(select(leg).where(leg.c.group_id.in_(group_ids)).order_by(leg.c.id)) if group_ids else []
            o = OrderRow.__table__
            st.working_orders = rows(select(o).where(o.c.status.in_(("new", "working"))))
            st.strategy_state = rows(select(StrategyStateRow.__table__))
            st.pnl_state = rows(select(PnlStateRow.__table__))
            qs = QueuedSignalRow.__table__
            st.queued_signals = rows(select(qs).where(qs.c.status == "queued").order_by(qs.c.id))
            for r in conn.execute(
                select(g.c.strategy_id, g.c.symbol, func.max(g.c.closed_at)).where(g.c.status == "closed")
                .group_by(g.c.strategy_id, g.c.symbol)
            ):
                st.last_exit[(r[0], r[1])] = r[2]
            for r in conn.execute(select(g.c.strategy_id, g.c.symbol, func.max(g.c.opened_at)).group_by(g.c.strategy_id, g.c.symbol)):
                st.last_entry[(r[0], r[1])] = r[2]
            for r in conn.execute(select(g.c.strategy_id, g.c.symbol).where(g.c.opened_at >= day_start).distinct()):
                st.entered_today.add((r[0], r[1]))
            for r in conn.execute(
                select(g.c.strategy_id, func.sum(g.c.realized_pnl)).where(g.c.status == "closed", g.c.closed_at >= day_start)
                .group_by(g.c.strategy_id)
            ):
                st.realized_today[r[0]] = float(r[1] or 0.0)
            st.realized_total = float(conn.execute(
                select(func.coalesce(func.sum(g.c.realized_pnl), 0.0)).where(g.c.status == "closed")).scalar_one())
            e = EventRow.__table__
            st.recent_events = list(reversed(rows(select(e).order_by(e.c.id.desc()).limit(300))))
            st.unread_alerts = rows(select(e).where(e.c.needs_ack.is_(True), e.c.acked_at.is_(None)).order_by(e.c.id))
            st.recent_orders = list(reversed(rows(select(o).order_by(o.c.id.desc()).limit(200))))
            # a closed round trip with its (first) leg's size and prices; an entry that never
            # filled has no leg and is no trade
            other = leg.alias("first_leg")
            first_leg = select(func.min(other.c.id)).where(other.c.group_id == g.c.id).correlate(g).scalar_subquery()
            st.recent_trades = list(reversed(rows(
                select(g, leg.c.qty, leg.c.avg_entry, leg.c.exit_price)
                .select_from(g).join(leg, leg.c.id == first_leg)
                .where(g.c.status == "closed").order_by(g.c.id.desc()).limit(200))))
            st.last_quotes = rows(select(TABLES["last_quote"]))
            for kind, table in TABLES.items():
                pk = PRIMARY_KEY[kind]
                if kind not in ("strategy_state", "pnl_state", "last_quote"):
                    st.max_ids[kind] = conn.execute(select(func.max(table.c[pk]))).scalar() or 0
        return st


_UPDATES: dict[str, object] = {}


def _update_many(conn, kind: str, rows: list[dict]) -> None:
    """One executemany UPDATE by primary key; every row of a kind has the same columns."""
    pk = PRIMARY_KEY[kind]
    stmt = _UPDATES.get(kind)
    if stmt is None:
        table = TABLES[kind]
        cols = [c.name for c in table.columns if c.name != pk]
        stmt = _UPDATES[kind] = table.update().where(table.c[pk] == bindparam("_pk")).values(
            {c: bindparam(c) for c in cols})
    conn.execute(stmt, [{**r, "_pk": r[pk]} for r in rows])


def read_open_positions(url: str) -> list[dict]:
    """Open legs with their group, for `tui-trader positions` (works while an engine runs)."""
    eng = open_store_readonly(url)
    try:
        leg, g = LegRow.__table__, PositionGroupRow.__table__
        stmt = (
            select(leg, g.c.status.label("group_status"), g.c.pending_exit)
            .join(g, g.c.id == leg.c.group_id)
            .where(leg.c.status == "open", or_(g.c.status == "open", g.c.status == "exiting"))
            .order_by(leg.c.group_id, leg.c.id)
        )
        with eng.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]
    finally:
        eng.dispose()


def read_pnl_state(url: str) -> list[dict]:
    """The stored state of the P&L rules, one row per scope, for `tui-trader check-exits`."""
    eng = open_store_readonly(url)
    try:
        with eng.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(PnlStateRow.__table__))]
    finally:
        eng.dispose()
