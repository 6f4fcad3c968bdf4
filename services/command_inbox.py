"""Operator commands from another process: `tui-trader levels`, `exit`, `pause` and `resume`
post a row into the `command_inbox` table and wait for its outcome; the running engine (TUI
or headless) claims each pending row, runs it on the loop through its command methods
(exit_position / exit_strategy / exit_all / edit_levels / pause / resume / stop_entries) and
records done or refused with the engine's message (the polling itself: services/inbox.py).

Claiming is a conditional update (pending and not taken -> taken_at set), and so is the
poster's cancel when it stops waiting (pending and not taken -> cancelled): a command is run
or cancelled, never both, and the poster reports what really happened. Only the engine that
claims a row runs it, once. A row claimed by an engine that stopped before recording what it
did is recorded as interrupted by the next one, not run again: the first one may have acted.
The SQL is the store's (services/store/inboxes.py)."""

from __future__ import annotations

import logging
from typing import Any

from .inbox import Inbox
from .ports import EngineCommands
from .store import inboxes
from .store.inboxes import CommandOutcome, InboxStatus, claim_commands, post_row, read_row, record_command_outcomes
from .store.sql import Database
from .views import CommandResult

log = logging.getLogger("tui_trader.command_inbox")

LEVELS = ("stop", "target", "trail_distance", "trail_activation", "time_exit_at")
"""The levels a `levels` command may carry: Engine.edit_levels keywords (None removes one)."""
CLOCK_SKEW_S = 5.0
"""An engine runs a command until this long after its poster's deadline (clocks may differ a little)."""


# -- the poster's side (another process) ------------------------------------------------------


def post_command(url: str, kind: str, args: dict[str, Any], now: float, wait_s: float) -> int:
    """Record one pending command that an engine may take until `now + wait_s`; returns its id.
    Raises StoreError if the database cannot be written."""
    return post_row(url, "command", {"kind": kind, "args": args, "created_at": now, "expires_at": now + wait_s,
                                     "status": InboxStatus.PENDING, "outcome": ""})


def read_command(db: Database, command_id: int) -> dict | None:
    return read_row(db, "command", command_id)


def cancel_command(db: Database, command_id: int, why: str) -> bool:
    """Cancel a command no engine has taken; False when one took it (or it is decided)."""
    return inboxes.cancel_command(db, command_id, why)


def describe(kind: str, args: dict[str, Any]) -> str:
    """A command in a few words, for logs: "exit #3", "exit strategy m", "levels #3"."""
    if args.get("all") is True:
        return f"{kind} all" if kind == "exit" else f"{kind} every entry"
    if "strategy" in args:
        return f"{kind} strategy {args['strategy']}"
    return f"{kind} #{args.get('group_id')}"


# -- the engine's side ------------------------------------------------------------------------


class CommandInbox(Inbox):
    """Engine attachment: runs the operator commands other processes post (see the module doc)."""

    label = "command inbox"
    unrecorded_at_stop = "the next start records them as interrupted"
    engine: EngineCommands  # bound before the first poll

    def __init__(self, url: str, poll_interval_s: float = 0.25) -> None:
        super().__init__(url, poll_interval_s, log)

    def _decide(self, row: dict, claimed: set[int]) -> CommandOutcome | None:
        cid = row["id"]
        if cid in claimed:
            return self._execute(cid, row["kind"], row["args"])
        if row["taken_at"] is not None:
            return CommandOutcome(cid, InboxStatus.REFUSED, "interrupted: an engine took it and stopped before "
                                                            "recording what it did; check the position (tui-trader positions)")
        if self.engine.state == "running" and self.engine.clock.now() > row["expires_at"] + CLOCK_SKEW_S:
            return CommandOutcome(cid, InboxStatus.CANCELLED, "not run: no engine took it before its poster stopped waiting")
        return None  # its poster cancelled it meanwhile, or this engine is stopping

    def _execute(self, cid: int, kind: str, args: Any) -> CommandOutcome:
        what = describe(kind, args) if isinstance(args, dict) else kind
        if self.engine.state != "running":
            return CommandOutcome(cid, InboxStatus.REFUSED, f"the engine is {self.engine.state}; nothing was changed")
        try:
            result = self._call(kind, args)
        except Exception as exc:  # a bug in the engine: recorded on the row, never retried
            log.exception("command #%d (%s): the engine failed to handle it", cid, what)
            return CommandOutcome(cid, InboxStatus.REFUSED, f"internal error in the engine: {exc!r}; see the log file")
        log.info("command #%d (%s): %s", cid, what, result.message)
        return CommandOutcome(cid, InboxStatus.DONE if result.ok else InboxStatus.REFUSED, result.message, result.needs_confirm)

    def _call(self, kind: str, args: Any) -> CommandResult:
        eng = self.engine
        if isinstance(args, dict):
            if kind == "exit" and args.get("all") is True:
                return eng.exit_all()
            if kind == "exit" and "strategy" in args:
                return eng.exit_strategy(args["strategy"])
            if kind == "exit" and "group_id" in args:
                return eng.exit_position(args["group_id"])
            if kind in ("pause", "resume") and args.get("all") is True:
                return eng.stop_entries(kind == "pause")
            if kind in ("pause", "resume") and isinstance(args.get("strategy"), str):
                return eng.pause(args["strategy"]) if kind == "pause" else eng.resume(args["strategy"])
            unknown = set(args) - {"group_id", "leg_id", "confirm", *LEVELS}
            if kind == "levels" and "group_id" in args and not unknown:
                levels = {name: args[name] for name in ("leg_id", *LEVELS) if name in args}
                if args.get("confirm") is True:
                    levels["confirm"] = True
                return eng.edit_levels(args["group_id"], **levels)
        return CommandResult.error(f"malformed command: {kind} {args!r}")

    # -- database (worker thread) ---------------------------------------------------------

    def _read_pending(self) -> tuple[list[dict], set[int]]:
        """Pending rows (oldest first) and the ids of those this poll claimed. A stopping
        engine claims nothing: the posters see no answer and cancel."""
        now = self.engine.clock.now()
        claiming = self.engine.state == "running"
        return claim_commands(self._database(), now,
                              lambda row: claiming and now <= row["expires_at"] + CLOCK_SKEW_S)

    def _write(self, batch: list[CommandOutcome]) -> None:
        record_command_outcomes(self._database(), batch)
