"""The SQL store (SQLite by default, any SQLAlchemy URL works).

Critical writes (orders, fills, level changes, lifecycle, events) are committed by write()
before the engine acts on them: one short transaction, SQLite in WAL mode with
synchronous=NORMAL, which survives kill -9 (not power loss). Marks are write-behind:
touch() records the row as dirty and a background thread writes each dirty row at most
once per flush interval.

write() runs on the event loop and never waits on the database for more than a few tens of
milliseconds: when it is busy or failing (or the write-behind thread is stuck in it), the
rows queue in memory in order, the loop writes nothing itself until the queue is empty
again, and the write-behind thread retries the queue with a longer wait; if that fails too,
the engine is told (it raises an alert). A row the database refuses (a constraint: a bug,
not an outage) is logged and dropped with an alert of its own, and the others land."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import threading
import time
from contextlib import nullcontext
from typing import Callable, Iterable, Iterator

from sqlalchemy import bindparam, create_engine, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..domain import GroupStatus, QueuedStatus, Record, RunStatus
from ..event_log import EventQuery
from ..orders import FINAL, OrderStatus
from ..views import EventView
from . import events, schema
from .loaded import LoadedState
from .tables import (
    PRIMARY_KEY, TABLES, EventRow, LegRow, OrderRow, PnlStateRow, PositionGroupRow, QueuedSignalRow, StrategyRunRow,
    StrategyStateRow,
)

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 2.0
"""How long a connection waits for another one's write lock: a shell command's, a read or
retention in a worker thread. The store's own writes set their wait per attempt."""
LOOP_BUSY_S = 0.05
"""How long a write on the event loop waits for the database, and for the write-behind
thread to be done with the connection, before its rows are queued for that thread."""
RETRY_BUSY_S = 1.0
"""How long the write-behind thread waits for the database on each attempt: a database busy
for longer is failing (the alert comes within about this long of the first failed write)."""
DRAIN_S = 5.0
"""How long a clean stop gives the queued writes to land."""


Database = Engine
"""A database as make_engine opens it (a pool of connections): what the reads outside SqlStore take."""
StoreError = SQLAlchemyError
"""Any error from the database (a subclass says which): what callers outside the store catch."""


class StoreLockedError(RuntimeError):
    """Another engine process holds this database."""


class NoDatabaseError(RuntimeError):
    """A read found no database file: nothing was recorded there yet (and a read creates none)."""


def _sqlite_path(url: str) -> str | None:
    if url.startswith("sqlite:///") and ":memory:" not in url:
        return url[len("sqlite:///"):]
    return None


def make_engine(url: str) -> Engine:
    """The engine for url; its directory is not created (only an engine's store creates one)."""
    if url.startswith("sqlite"):
        eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S})

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
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


def open_existing(url: str) -> Engine:
    """open_store_readonly for a command that only reads: a SQLite file that is not there
    raises NoDatabaseError instead of being created."""
    path = _sqlite_path(url)
    if path and not os.path.isfile(path):
        raise NoDatabaseError(f"no database at {path}: nothing was recorded there yet (start `tui-trader` or "
                              "`tui-trader engine` once, or point --db at the engine's database)")
    return open_store_readonly(url)


def engine_running(url: str) -> bool | None:
    """Whether an engine holds this SQLite database's lock file (None: not a SQLite file, so
    no way to tell). A non-blocking probe: an engine starting in that very instant is told
    another one is running. It never opens the database file itself: closing a descriptor of
    it would drop the POSIX locks SQLite holds on it in this process."""
    path = _sqlite_path(url)
    if not path:
        return None
    try:
        with open(os.path.realpath(path) + ".lock") as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(probe, fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False


class SqlStore:
    needs_marks = True  # the marks of open legs are written behind

    def __init__(self, url: str, flush_interval_s: float = 1.0,
                 on_failure: Callable[[str], None] | None = None,
                 on_recovery: Callable[[int], None] | None = None,
                 on_refused: Callable[[str], None] | None = None,
                 retry_busy_s: float = RETRY_BUSY_S) -> None:
        self.url = url
        self.flush_interval_s = flush_interval_s
        self.retry_busy_s = retry_busy_s
        self.on_failure = on_failure
        self.on_recovery = on_recovery
        self.on_refused = on_refused
        self.ok = True
        self.error = ""
        self.engine: Engine | None = None
        self._sqlite = url.startswith("sqlite")
        self._conn = None
        self._lock = threading.Lock()  # held while a write uses the connection
        # Critical writes not committed yet, each with its row as it was when written (only
        # while the database is busy or failing); _qlock guards it, never held over I/O.
        self._queue: list[tuple[Record, dict]] = []
        self._qlock = threading.Lock()
        self._dirty: dict[tuple[str, object], Record] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()  # the write-behind thread's next round now, not at the interval
        self._thread: threading.Thread | None = None
        self._closed = False
        self._refused_records: set[tuple[str, object]] = set()  # alerted once each
        self._lock_files: list = []

    # -- lifecycle -------------------------------------------------------------------------

    def open(self, day_start: float = 0.0) -> LoadedState:
        self._take_process_lock()
        self.engine = make_engine(self.url)
        schema.upgrade(self.engine)
        return self._load(day_start)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._flush_loop, name="store-write-behind", daemon=True)
        self._thread.start()

    async def drain(self) -> None:
        """A clean stop's wait before close(), without blocking the loop: the queued writes get
        up to DRAIN_S to land, then the write-behind thread ends its attempt and stops."""
        deadline = time.monotonic() + DRAIN_S
        while self._queue and self._thread is not None and time.monotonic() < deadline:
            self._wake.set()  # retried back to back, not once per flush interval
            await asyncio.sleep(0.05)
        self._stop.set()
        self._wake.set()
        while self._thread is not None and self._thread.is_alive() and time.monotonic() < deadline + self._round_s:
            await asyncio.sleep(0.02)

    def close(self, force: bool = False) -> None:
        """A last attempt at the queue and the marks (waiting LOOP_BUSY_S at most), then close.
        What does not land is logged as not committed. force (the forced stop): a write-behind
        thread stuck in the database is not waited for; the process exits with it."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=LOOP_BUSY_S if force else self._round_s)
            if self._thread.is_alive():  # the connection is its: left as it is, as is the process lock
                self._log_uncommitted()
                return
        with self._lock:
            self._flush(LOOP_BUSY_S)
            self._log_uncommitted()
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if self.engine is not None:
            if self.ok and not self._queue:
                self._checkpoint("TRUNCATE", LOOP_BUSY_S)
            self.engine.dispose()
        self._release_process_lock()  # after the last SQLite connection of this store is closed

    def _take_process_lock(self) -> None:
        """One engine per database however its path is spelled: the lock file next to the
        real file (through symlinks; what engine_running probes), and a lock on the database
        file itself, which a hard link shares. Taken before this store opens a connection and
        released after the last one is closed, as closing a descriptor of the database drops
        the POSIX locks SQLite holds on it in this process."""
        path = _sqlite_path(self.url)
        if not path:
            return
        path = os.path.realpath(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        for name, mode in ((path + ".lock", "a+"), (path, "ab")):  # "ab" creates an empty database, writes nothing
            lock_file = open(name, mode)
            self._lock_files.append(lock_file)
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._release_process_lock()
                raise StoreLockedError(
                    f"another tui-trader engine is running on {path}; stop it first, "
                    "or give this one its own database with store.url"
                ) from None

    def _release_process_lock(self) -> None:
        for lock_file in reversed(self._lock_files):
            lock_file.close()
        self._lock_files.clear()

    # -- writes ----------------------------------------------------------------------------

    @property
    def _round_s(self) -> float:
        """The longest a write-behind round waits on a busy database: the queue, then the marks."""
        return 2 * self.retry_busy_s

    def write(self, records: Iterable[Record]) -> None:
        """Commit these records now, in order. While the database is busy or failing they
        queue in memory behind the writes queued before them, for the write-behind thread."""
        with self._qlock:  # the rows as they are now: the loop may change the records before they land
            behind = bool(self._queue)
            self._queue += [(rec, rec.row()) for rec in records]
            if not self._queue:
                return
        threaded = self._thread is not None
        if behind and threaded:  # the thread owns the queue until it is empty: no waiting on the loop
            return
        if not self._lock.acquire(timeout=LOOP_BUSY_S):  # the thread is stuck in the database
            self._wake.set()
            return
        try:
            committed = self._commit_queue(LOOP_BUSY_S)
        except SQLAlchemyError as exc:
            if threaded and database_busy(exc):  # retried at once with a longer wait, which alerts if it fails too
                self._wake.set()
            else:
                self._failed(exc)
        else:
            if not self.ok:  # the thread was not started: the writes retry the queue themselves
                self._recovered(committed)
        finally:
            self._lock.release()

    def touch(self, record: Record) -> None:
        """Write this record behind, at most once per flush interval."""
        self._dirty[(record.KIND, record.id)] = record

    def flush(self) -> None:
        """One write-behind round (the queue, then the marks), waiting up to retry_busy_s for
        a busy database: the write-behind thread's, never the loop's."""
        with self._lock:
            self._flush(self.retry_busy_s)

    def _flush(self, busy_s: float) -> None:
        committed = 0
        try:
            while self._queue:  # the loop may queue more meanwhile
                committed += self._commit_queue(busy_s)
        except SQLAlchemyError as exc:
            self._failed(exc)
            return
        if committed and self.ok:
            log.warning("the database was busy: %d write(s) committed late, by the write-behind thread", committed)
        with self._qlock:  # a row queued after these are read is newer: it lands after them
            if self._queue:
                return
            # touch() runs on the loop without a lock: the swapped-out dict is copied in one
            # step instead of iterated while a late touch() may still insert.
            swapped, self._dirty = self._dirty, {}
            dirty = list(swapped.items())
            # not inserted yet: the critical write that inserts it carries it
            marks = [(rec, rec.row()) for _, rec in dirty if rec.saved]
        if marks:
            try:
                self._write_rows(marks, busy_s)
            except SQLAlchemyError as exc:
                for key, rec in dirty:
                    self._dirty.setdefault(key, rec)
                self._failed(exc)
                return
        if not self.ok and (committed or marks):  # an outage only the write-behind saw ends here too
            self._recovered(committed + len(marks))

    def _flush_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            if self._stop.is_set():  # close() makes the last attempt
                return
            try:
                self.flush()
                if self.ok and not self._queue:
                    self._checkpoint("PASSIVE")
            except Exception:  # the write-behind thread must never die silently
                log.exception("write-behind flush failed")

    def _checkpoint(self, mode: str, busy_s: float | None = None) -> None:
        """Move the WAL into the database file, on a connection of its own and outside the
        write lock: a PASSIVE checkpoint never blocks the writer."""
        if not self._sqlite or self.engine is None:
            return
        try:
            with self.engine.connect() as conn:
                if busy_s is not None:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={int(busy_s * 1000)}")
                conn.exec_driver_sql(f"PRAGMA wal_checkpoint({mode})")
        except SQLAlchemyError as exc:
            log.warning("WAL checkpoint failed: %s", _first_line(exc))

    def _commit_queue(self, busy_s: float) -> int:
        """Commit the queued writes (callers hold the lock): how many left the queue. Raises
        SQLAlchemyError while the database fails; they stay queued."""
        with self._qlock:
            batch = self._queue[:]
        if not batch:
            return 0
        latest = {(rec.KIND, rec.id): (rec, row) for rec, row in batch}  # rows in order: the last is the newest
        self._write_rows(list(latest.values()), busy_s)
        with self._qlock:
            del self._queue[:len(batch)]
        return len(batch)

    def _write_rows(self, rows: list[tuple[Record, dict]], busy_s: float) -> None:
        """Write these rows in one transaction: an insert for a record not saved yet, else an
        update. Rows the database refuses (a constraint: a bug, not an outage) are found by
        writing them again one at a time; they are logged and dropped with an alert, the others
        committed."""
        conn = self._connection()
        try:
            with conn.begin():
                if self._sqlite:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={int(busy_s * 1000)}")
                _execute(conn, rows)
            refused = []
        except IntegrityError:
            refused = []
            with conn.begin():
                for row in rows:
                    try:  # SQLite undoes only the failing statement; other databases need a savepoint
                        with nullcontext() if self._sqlite else conn.begin_nested():
                            _execute(conn, [row])
                    except IntegrityError as exc:
                        refused.append((row, exc))
        dropped = {id(rec) for (rec, _), _ in refused}
        for rec, _ in rows:
            if id(rec) not in dropped:
                rec.saved = True
        if refused:
            self._refused(refused)

    def _refused(self, refused: list) -> None:
        """Each refused row to the log; one alert per record (its later writes are refused too, most likely)."""
        for (rec, row), exc in refused:
            log.error("the database refused a write, dropped (a bug): %s #%s %r: %s", rec.KIND, rec.id, row,
                      _first_line(exc.orig))
        new = [(rec, exc) for (rec, _), exc in refused if (rec.KIND, rec.id) not in self._refused_records]
        self._refused_records.update((rec.KIND, rec.id) for rec, _ in new)
        if new and self.on_refused:
            self.on_refused(f"{', '.join(f'{rec.KIND} #{rec.id}' for rec, _ in new)} ({_first_line(new[0][1].orig)})")

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
        message = _first_line(exc)
        if self.ok:
            self.ok, self.error = False, message
            log.error("database write failed; queueing writes in memory: %s", message)
            if self.on_failure:
                self.on_failure(message)

    def _log_uncommitted(self) -> None:
        """Nothing is dropped silently: the latest row of each record not committed goes to the log."""
        with self._qlock:
            queued = self._queue[:]
        if queued:
            latest = {(rec.KIND, rec.id): (rec, row) for rec, row in queued}
            log.error("closing with %d write(s) not committed: the database is %s; the latest row of each "
                      "of the %d record(s) follows", len(queued), f"failing ({self.error})" if self.error else "busy",
                      len(latest))
            for rec, row in latest.values():
                log.error("not committed: %s %r", rec.KIND, row)
        if self._dirty:
            log.warning("closing with the marks of %d record(s) not written", len(self._dirty))

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

            st.runs = rows(select(StrategyRunRow.__table__).where(StrategyRunRow.__table__.c.status != RunStatus.CLOSED))
            g = PositionGroupRow.__table__
            st.groups = rows(select(g).where(g.c.status != GroupStatus.CLOSED).order_by(g.c.id))
            group_ids = [r["id"] for r in st.groups]
            leg = LegRow.__table__
            # every leg of an open group: a grid's pending and finished layers too
            st.legs = rows(select(leg).where(leg.c.group_id.in_(group_ids)).order_by(leg.c.id)) if group_ids else []
            o = OrderRow.__table__
            st.working_orders = rows(select(o).where(o.c.status.in_(tuple(s.value for s in OrderStatus if s not in FINAL))))
            st.strategy_state = rows(select(StrategyStateRow.__table__))
            st.pnl_state = rows(select(PnlStateRow.__table__))
            qs = QueuedSignalRow.__table__
            st.queued_signals = rows(select(qs).where(qs.c.status == QueuedStatus.QUEUED).order_by(qs.c.id))
            for r in conn.execute(
                select(g.c.strategy_id, g.c.symbol, func.max(g.c.closed_at)).where(g.c.status == GroupStatus.CLOSED)
                .group_by(g.c.strategy_id, g.c.symbol)
            ):
                st.last_exit[(r[0], r[1])] = r[2]
            for r in conn.execute(select(g.c.strategy_id, g.c.symbol, func.max(g.c.opened_at)).group_by(g.c.strategy_id, g.c.symbol)):
                st.last_entry[(r[0], r[1])] = r[2]
            for r in conn.execute(select(g.c.strategy_id, g.c.symbol).where(g.c.opened_at >= day_start).distinct()):
                st.entered_today.add((r[0], r[1]))
            for r in conn.execute(
                select(g.c.strategy_id, func.sum(g.c.realized_pnl)).where(g.c.status == GroupStatus.CLOSED, g.c.closed_at >= day_start)
                .group_by(g.c.strategy_id)
            ):
                st.realized_today[r[0]] = float(r[1] or 0.0)
            # every group's, open ones too: a partial exit or a layer's own take-profit is in the cash
            st.realized_total = float(conn.execute(select(func.coalesce(func.sum(g.c.realized_pnl), 0.0))).scalar_one())
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
                .where(g.c.status == GroupStatus.CLOSED).order_by(g.c.id.desc()).limit(200))))
            st.last_quotes = rows(select(TABLES["last_quote"]))
            for kind, table in TABLES.items():
                pk = PRIMARY_KEY[kind]
                if kind not in ("strategy_state", "pnl_state", "last_quote"):
                    st.max_ids[kind] = conn.execute(select(func.max(table.c[pk]))).scalar() or 0
        return st


def database_busy(exc: BaseException) -> bool:
    """Whether exc is SQLite saying another connection holds the database (SQLITE_BUSY or
    SQLITE_LOCKED, extended codes included)."""
    return (getattr(getattr(exc, "orig", exc), "sqlite_errorcode", 0) & 0xFF) in (5, 6)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _execute(conn, rows: list[tuple[Record, dict]]) -> None:
    inserts: dict[str, list[dict]] = {}
    updates: dict[str, list[dict]] = {}
    for rec, row in rows:
        (updates if rec.saved else inserts).setdefault(rec.KIND, []).append(row)
    for kind, batch in inserts.items():
        conn.execute(TABLES[kind].insert(), batch)
    for kind, batch in updates.items():
        _update_many(conn, kind, batch)


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
