"""The inboxes' rows in SQL (services/inbox.py, signal_inbox.py, command_inbox.py keep the
logic): what a shell command posts, reads back or cancels, and what an engine reads, claims
and records. Each function runs in one short transaction; the engine's side runs in a worker
thread on the inbox's own connection pool, never on the store's write connection."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Callable, Literal

from sqlalchemy import select, update

from .sql import Database, make_engine, open_store_readonly
from .tables import CommandInboxRow, SignalInboxRow, SignalRow
from .urls import is_shared_url

Inbox = Literal["signal", "command"]
TABLES = {"signal": SignalInboxRow.__table__, "command": CommandInboxRow.__table__}
SIGNAL_INBOX, COMMAND_INBOX = TABLES["signal"], TABLES["command"]
SIGNALS = SignalRow.__table__


class InboxStatus(StrEnum):
    """An inbox row's status: pending until an engine decides it, or its poster cancels it."""

    PENDING = "pending"
    TAKEN = "taken"  # a signal the engine acted on
    REJECTED = "rejected"  # a signal refused (by the shell's checks, or by the engine)
    EXPIRED = "expired"  # a signal older than signal_ttl_s when an engine saw it
    DONE = "done"  # a command the engine carried out
    REFUSED = "refused"  # a command the engine refused, or one it was interrupted in
    CANCELLED = "cancelled"  # a command its poster gave up on, or that no engine took in time


def open_inbox_database(url: str) -> Database:
    """The database an engine's inbox polls: migrated first when another process shares it."""
    return open_store_readonly(url) if is_shared_url(url) else make_engine(url)


# -- the poster's side (another process) ------------------------------------------------------


def post_row(url: str, inbox: Inbox, values: dict[str, Any]) -> int:
    """Insert one inbox row and return its id. Raises StoreError if the database cannot be
    written."""
    db = open_store_readonly(url)
    try:
        with db.begin() as conn:
            return int(conn.execute(TABLES[inbox].insert().values(**values)).inserted_primary_key[0])
    finally:
        db.dispose()


def read_row(db: Database, inbox: Inbox, row_id: int) -> dict | None:
    table = TABLES[inbox]
    with db.connect() as conn:
        row = conn.execute(select(table).where(table.c.id == row_id)).first()
    return dict(row._mapping) if row is not None else None


def cancel_command(db: Database, command_id: int, why: str) -> bool:
    """Cancel a command no engine has taken; False when one took it (or it is decided)."""
    with db.begin() as conn:
        result = conn.execute(update(COMMAND_INBOX).where(
            COMMAND_INBOX.c.id == command_id, COMMAND_INBOX.c.status == InboxStatus.PENDING,
            COMMAND_INBOX.c.taken_at.is_(None),
        ).values(status=InboxStatus.CANCELLED, outcome=why))
    return result.rowcount == 1


# -- the engine's side: signals ---------------------------------------------------------------


@dataclass
class SignalOutcome:
    """What is recorded on a signal inbox row."""

    inbox_id: int
    status: InboxStatus  # taken | rejected | expired
    outcome: str
    taken_at: float
    signal_id: str | None = None
    strategy_id: str = ""
    find_signals: bool = False  # look up the engine's Signal rows for this inbox id when writing


def pending_signals(db: Database, clock_skew_s: float) -> tuple[list[dict], dict[int, list[dict]]]:
    """Pending rows (oldest first, at most 500) and, for those the engine already acted on,
    its Signal rows (see signals_for)."""
    with db.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(
            select(SIGNAL_INBOX).where(SIGNAL_INBOX.c.status == InboxStatus.PENDING).order_by(SIGNAL_INBOX.c.id).limit(500))]
        seen = _signals_for(conn, {r["id"] for r in rows}, min((r["created_at"] for r in rows), default=0.0),
                            clock_skew_s)
    return rows, seen


def record_signal_outcomes(db: Database, batch: list[SignalOutcome], clock_skew_s: float) -> None:
    """Record the outcomes on their rows, each only if still pending (an outcome is recorded
    once), in one transaction. An outcome that asks for them first gets the ids of the Signal
    rows carrying its inbox id (kept on it should the transaction fail)."""
    with db.begin() as conn:
        lookup = [o for o in batch if o.find_signals and o.signal_id is None]
        if lookup:
            found = _signals_for(conn, {o.inbox_id for o in lookup}, min(o.taken_at for o in lookup), clock_skew_s)
            for o in lookup:
                if o.inbox_id in found:
                    o.signal_id = ",".join(str(s["id"]) for s in found[o.inbox_id])
        for o in batch:
            conn.execute(update(SIGNAL_INBOX).where(
                SIGNAL_INBOX.c.id == o.inbox_id, SIGNAL_INBOX.c.status == InboxStatus.PENDING,
            ).values(status=o.status, outcome=o.outcome, taken_at=o.taken_at, signal_id=o.signal_id))


def _signals_for(conn, inbox_ids: set[int], since: float, clock_skew_s: float) -> dict[int, list[dict]]:
    """The engine's Signal rows that carry one of these inbox ids (payload `inbox_id`), by
    inbox id, among those received since `since` less the clocks' possible skew."""
    if not inbox_ids:
        return {}
    found: dict[int, list[dict]] = {}
    stmt = (select(SIGNALS.c.id, SIGNALS.c.status, SIGNALS.c.outcome, SIGNALS.c.payload)
            .where(SIGNALS.c.received_at >= since - clock_skew_s)
            .order_by(SIGNALS.c.id))
    for r in conn.execute(stmt):
        iid = r.payload.get("inbox_id") if isinstance(r.payload, dict) else None
        if iid in inbox_ids:
            found.setdefault(iid, []).append({"id": r.id, "status": r.status, "outcome": r.outcome})
    return found


# -- the engine's side: commands --------------------------------------------------------------


@dataclass
class CommandOutcome:
    """What is recorded on a command inbox row."""

    command_id: int
    status: InboxStatus  # done | refused | cancelled
    outcome: str
    needs_confirm: bool = False


def claim_commands(db: Database, now: float, may_claim: Callable[[dict], bool]) -> tuple[list[dict], set[int]]:
    """Pending rows (oldest first, at most 100) and the ids of those claimed in the same
    transaction: a row no engine has taken that may_claim accepts gets taken_at = now, unless
    its poster cancelled it or another engine claimed it meanwhile (a conditional update)."""
    claimed: set[int] = set()
    with db.begin() as conn:
        rows = [dict(r._mapping) for r in conn.execute(
            select(COMMAND_INBOX).where(COMMAND_INBOX.c.status == InboxStatus.PENDING).order_by(COMMAND_INBOX.c.id).limit(100))]
        for row in rows:
            if row["taken_at"] is None and may_claim(row):
                taken = conn.execute(update(COMMAND_INBOX).where(
                    COMMAND_INBOX.c.id == row["id"], COMMAND_INBOX.c.status == InboxStatus.PENDING,
                    COMMAND_INBOX.c.taken_at.is_(None),
                ).values(taken_at=now))
                if taken.rowcount == 1:
                    claimed.add(row["id"])
    return rows, claimed


def record_command_outcomes(db: Database, batch: list[CommandOutcome]) -> None:
    """Record the outcomes on their rows, each only if still pending (an outcome is recorded
    once), in one transaction."""
    with db.begin() as conn:
        for o in batch:
            conn.execute(update(COMMAND_INBOX).where(
                COMMAND_INBOX.c.id == o.command_id, COMMAND_INBOX.c.status == InboxStatus.PENDING,
            ).values(status=o.status, outcome=o.outcome, needs_confirm=o.needs_confirm))
