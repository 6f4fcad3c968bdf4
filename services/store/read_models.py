"""What the shell commands read from the database, shaped for them: the open positions
(`tui-trader positions`, `levels`, `exit`, `check-exits`) and the P&L rules' stored state
(`check-exits`). Each opens the database for itself and works while an engine runs in
another process; a SQLite file that is not there raises NoDatabaseError (a read creates none)."""

from __future__ import annotations

from sqlalchemy import or_, select

from ..domain import GroupStatus, LegStatus
from .sql import open_existing
from .tables import LegRow, PnlStateRow, PositionGroupRow


def read_open_positions(url: str) -> list[dict]:
    """Open legs with their group's status and pending exit, by position then leg."""
    db = open_existing(url)
    try:
        leg, g = LegRow.__table__, PositionGroupRow.__table__
        stmt = (
            select(leg, g.c.status.label("group_status"), g.c.pending_exit)
            .join(g, g.c.id == leg.c.group_id)
            .where(leg.c.status == LegStatus.OPEN, or_(g.c.status == GroupStatus.OPEN, g.c.status == GroupStatus.EXITING))
            .order_by(leg.c.group_id, leg.c.id)
        )
        with db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]
    finally:
        db.dispose()


def read_pnl_state(url: str) -> list[dict]:
    """The stored state of the P&L rules, one row per scope."""
    db = open_existing(url)
    try:
        with db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(PnlStateRow.__table__))]
    finally:
        db.dispose()
