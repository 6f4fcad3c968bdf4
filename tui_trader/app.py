"""The Textual application: seven screens over one engine, switched with the number keys.

Rendering: the engine publishes frozen snapshots (coalesced by the engine to
engine.publish_hz). The subscription callback keeps the newest one and posts a
`SnapshotReady` message that `can_replace` an older one still in the queue; its handler
renders at most once per RENDER_INTERVAL, only the visible screen, inside `batch_update()`.
A hidden screen catches up when it is shown. A 1 s heartbeat takes a snapshot itself when
nothing was published for a while, so the clock and STALE markers keep moving when the
market is quiet."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from rich.text import Text
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer

from screens import commands
from screens.base import EngineScreen
from screens.entry import EntryScreen
from screens.exits import ExitsScreen
from screens.format import set_ticks
from screens.logs import LogsScreen
from screens.positions import PositionsScreen
from screens.queue import QueueScreen
from screens.risk import RiskScreen
from screens.schedule import ScheduleScreen
from screens.widgets.help import HelpScreen
from screens.widgets.orphans import OrphansScreen
from services.event_categories import EventCategory
from services.ports import EngineService
from services.domain import RiskHold
from services.views import EngineSnapshot, StrategyStatus

from .headless import FORCE_WINDOW_S, FORCED_EXIT
from .locations import data_dir, log_file

log = logging.getLogger("tui_trader.app")

SCREENS: tuple[tuple[str, str, type[EngineScreen]], ...] = (
    ("1", "schedule", ScheduleScreen),
    ("2", "entry", EntryScreen),
    ("3", "positions", PositionsScreen),
    ("4", "exits", ExitsScreen),
    ("5", "queue", QueueScreen),
    ("6", "logs", LogsScreen),
    ("7", "risk", RiskScreen),
)

FLASH_CATEGORIES = (EventCategory.RISK, EventCategory.EXIT, EventCategory.FILL, EventCategory.TRAILING,
                    EventCategory.ENTRY)  # by priority, after warnings and errors
FLASH_LEVELS = {"warning": "warning", "error": "error", "critical": "error"}
MAX_FLASHES = 3
"""At most this many flashes per NOTIFICATION_TIMEOUT window; the rest are summarised."""
CRITICAL_TIMEOUT = 30.0
"""A critical alert's flash stays this long (seconds)."""
MAX_WAITING = 100
"""Notable events kept for the next window while the flashes are used up (the rest are counted)."""


def _exit_now() -> None:
    logging.shutdown()
    os._exit(0)


class SnapshotReady(Message):
    """A new engine snapshot; a newer one replaces an older one still waiting in the queue."""

    def __init__(self, snapshot: EngineSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotReady)


class TraderApp(App[None]):
    TITLE = "tui_trader"
    MODES = {mode: cls for _, mode, cls in SCREENS}
    DEFAULT_MODE = "schedule"
    RENDER_INTERVAL = 0.2
    """Render at most this often (seconds), however fast snapshots arrive."""
    HEARTBEAT = 1.0
    """Take a snapshot ourselves when none was published for this long (quiet market)."""
    NOTIFICATION_TIMEOUT = 4.0

    CSS = """
    Toast {
        padding: 0 1;
        width: 56;
    }
    """

    BINDINGS = [
        # The screen keys are shown by the tab line of the status bar, so not in the footer.
        *(Binding(key, f"switch_mode('{mode}')", cls.NAME, show=False, id=f"screen.{mode}")
          for key, mode, cls in SCREENS),
        Binding("question_mark,f1", "help", "Help", tooltip="Show the keys", id="app.help"),
        Binding("E", "toggle_entries", "Stop/resume entries", show=False,
                tooltip="The book-wide switch: no strategy enters while stopped; positions stay managed",
                id="app.entries"),
        Binding("q", "quit", "Quit", tooltip="Stop the engine (positions stay open) and quit", id="app.quit"),
        Binding("ctrl+c,ctrl+q", "interrupt", "Quit", show=False, priority=True,
                tooltip="Stop the engine and quit; again within 2 s: quit at once", id="app.quit_now"),
    ]

    def __init__(self, settings: Any, engine: EngineService, settings_path: Path | None = None,
                 notice: str = "") -> None:
        super().__init__()
        self.settings = settings
        self.engine = engine
        self.settings_path = settings_path
        self.notice = notice
        """Said once at the start: e.g. that the demo's settings are in use."""
        self.export_dir = data_dir() / "exports"
        self.log_path = log_file(settings.logs.file if settings is not None else "")
        """Where the log file is (named in the one-line message of an internal error)."""
        self.latest_snapshot: EngineSnapshot | None = None
        self._unsubscribe = None
        self._last_render = 0.0
        self._last_snapshot_at = 0.0
        self._render_timer: Timer | None = None
        self._last_event_id = 0
        self._flash_since = 0.0
        self._flashed_at: list[float] = []
        self._unflashed: list[Any] = []
        """Notable events not flashed yet (the flashes of the current window were used up)."""
        self._unflashed_more = 0
        """How many more were left out of _unflashed (counted in the summary)."""
        self._stopping = False
        self._quit_at: float | None = None
        """When the last quit key was pressed (a second ctrl+c within FORCE_WINDOW_S forces the exit)."""
        self._started = False
        self._orphans_asked: set[str] = set()  # strategies the operator was asked about at this start
        self.start_error: str | None = None
        """Why the engine could not start (the app then exits with return code 2)."""

    # == lifecycle ===========================================================================

    async def on_mount(self) -> None:
        self._flash_since = self.engine.clock.now()  # history loaded from the store is not flashed
        try:
            await self.engine.start()
        except Exception as exc:  # a user-facing start failure: say what, no traceback
            log.exception("engine failed to start")
            self.start_error = str(exc)
            self.exit(return_code=2, message=str(exc))
            return
        self._started = True
        self._unsubscribe = self.engine.subscribe(self._on_engine_snapshot)
        self.render_now()
        if self.notice:
            self.notify(self.notice, title="Settings", severity="warning", timeout=20, markup=False)
        self._ask_about_orphans()
        self.set_interval(self.HEARTBEAT, self._heartbeat)
        self._watch_terminal()
        # What start-up allocated lives as long as the app: keep it out of the collector's
        # full passes, which otherwise stall the loop for ~100 ms under load.
        gc.collect()
        gc.freeze()

    def _ask_about_orphans(self) -> None:
        """Open positions of a strategy gone from the settings are not dropped silently: ask,
        one strategy at a time, whether to keep managing them or to close them."""
        snap = self.latest_snapshot
        waiting = [o for o in (snap.orphans if snap else ()) if not o.decided and o.strategy_id not in self._orphans_asked]
        if not waiting:
            return
        orphan = waiting[0]
        self._orphans_asked.add(orphan.strategy_id)
        held = {g.id: f"#{g.id} {'+'.join(g.symbols)}" for g in snap.groups if g.id in orphan.group_ids}
        engine = self.engine

        def answered(choice: str | None) -> None:
            if choice == "keep":
                commands.report(self, engine.keep_managing(orphan.strategy_id))
            elif choice == "close":
                commands.report(self, engine.exit_strategy(orphan.strategy_id))
            # "later" (None): they stay managed, the note stays on 3 Positions; on to the next
            self.render_now()
            self._ask_about_orphans()

        self.push_screen(OrphansScreen(orphan, ", ".join(held.values()) or f"{len(orphan.group_ids)} position(s)"),
                         answered)

    def _watch_terminal(self) -> None:
        """Quit cleanly on SIGTERM, and on SIGHUP or when the terminal goes away without a
        signal (a dropped SSH session under make: stdin stops being a tty)."""
        if self.is_headless:
            return
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._quit_because, "signal SIGTERM", False)
        loop.add_signal_handler(signal.SIGHUP, self._quit_because, "signal SIGHUP", True)
        try:
            self._stdin_fd = sys.__stdin__.fileno()
        except (AttributeError, ValueError, OSError):
            return
        if os.isatty(self._stdin_fd):
            self.set_interval(1.0, self._check_terminal)

    def _check_terminal(self) -> None:
        if not os.isatty(self._stdin_fd):
            self._quit_because("the terminal went away", True)

    def _quit_because(self, why: str, terminal_gone: bool) -> None:
        log.warning("%s: stopping the engine cleanly (positions stay open)", why)
        asyncio.ensure_future(self._quit_then(terminal_gone))

    async def _quit_then(self, terminal_gone: bool) -> None:
        if terminal_gone:
            # Restoring a terminal that no longer exists can block Textual's shutdown (and
            # the loop with it): a thread ends the process 2 s after the engine has stopped.
            await self._stop_engine()
            timer = threading.Timer(2.0, _exit_now)
            timer.daemon = True
            timer.start()
        await self.action_quit()

    async def action_quit(self) -> None:
        """Stop the engine (it flushes; positions stay open) and exit. The stop runs in a
        worker, so the app still hears a second ctrl+c while it runs."""
        if self._stopping:
            return
        self._stopping = True
        self._quit_at = time.monotonic()
        if self._started:
            self.notify("Stopping the engine: positions stay open and are managed again at the next start. "
                        "ctrl+c again within 2 s quits at once.", markup=False)
        # the method, not a coroutine: a forced exit before the worker starts leaves none un-awaited
        self.run_worker(self._stop_then_exit, name="engine-stop", group="engine-stop")

    async def _stop_then_exit(self) -> None:
        await self._stop_engine()
        self.exit()

    async def action_interrupt(self) -> None:
        """ctrl+c: quit; pressed again within FORCE_WINDOW_S while the engine stops, quit at
        once (everything decided is committed; working orders are left as they are)."""
        now = time.monotonic()
        if not self._stopping:
            await self.action_quit()
        elif self._quit_at is not None and now - self._quit_at <= FORCE_WINDOW_S:
            log.warning("second ctrl+c: forcing the exit")
            if self._started:
                self.engine.stop_now()
            self.exit(return_code=FORCED_EXIT)
        else:
            self._quit_at = now

    async def on_unmount(self) -> None:
        await self._stop_engine()  # whatever ended the app, the engine is stopped cleanly

    async def _stop_engine(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._started and self.engine.state not in ("stopped", "stopping"):
            try:
                await self.engine.stop()
            except Exception:
                log.exception("engine failed to stop cleanly")

    def _fatal_error(self) -> None:
        """An unhandled exception in the UI (a bug): its traceback goes to the log file and the
        operator gets one line instead of Textual's traceback. Textual then closes the app,
        and on_unmount still stops the engine cleanly."""
        error = sys.exc_info()[1]
        log.error("internal error in the TUI", exc_info=error)
        self.bell()
        self._exit_renderables.append(Text(f"tui-trader: internal error: {error} (details in {self.log_path})"))
        self._close_messages_no_wait()

    # == rendering ===========================================================================

    def _on_engine_snapshot(self, snap: EngineSnapshot) -> None:
        """Engine subscription callback (on the loop): keep the newest, let the UI know."""
        self.latest_snapshot = snap
        self._last_snapshot_at = time.monotonic()
        self.post_message(SnapshotReady(snap))

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        if self._render_timer is not None:
            return  # a render is already scheduled; it will use the newest snapshot
        wait = self._last_render + self.RENDER_INTERVAL - time.monotonic()
        if wait <= 0:
            self._render()
        else:
            self._render_timer = self.set_timer(wait, self._render)

    def _heartbeat(self) -> None:
        if time.monotonic() - self._last_snapshot_at >= self.HEARTBEAT and self.engine.state == "running":
            self.render_now()

    def render_now(self) -> None:
        """Take a snapshot from the engine now and render it (after commands, and in tests)."""
        if self.engine.state in ("running", "stopping") or self.latest_snapshot is None:
            self.latest_snapshot = self.engine.snapshot()
            self._last_snapshot_at = time.monotonic()
        self._render()

    def _render(self) -> None:
        if self._render_timer is not None:
            self._render_timer.stop()
            self._render_timer = None
        snap = self.latest_snapshot
        if snap is None:
            return
        self._last_render = time.monotonic()
        set_ticks(snap.ticks)
        screen = self.visible_engine_screen
        if screen is not None and screen.is_mounted:
            with self.batch_update():
                screen.show(snap)
        self._flash(snap)

    @property
    def visible_engine_screen(self) -> EngineScreen | None:
        """The engine screen on show (under a modal, if one is open)."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, EngineScreen):
                return screen
        return None

    def _flash(self, snap: EngineSnapshot) -> None:
        """Flash entries (sent, filled, held, failed), fills, trailing activations, exits and
        any warning or error: at most MAX_FLASHES per NOTIFICATION_TIMEOUT, the most important
        first, the rest summarised (they are all on the Logs screen). Events that come while
        the flashes are used up wait for the next window instead of being dropped, so an
        entry failure or a held entry right after a busy moment still shows. A position's
        routine events of one batch collapse to the most telling one (its close rather than
        the exit decision, its fill rather than the entry)."""
        new = [e for e in snap.events if e.id > self._last_event_id]
        if new:
            self._last_event_id = max(e.id for e in new)
            new = [e for e in new if e.ts >= self._flash_since]  # history loaded at the start is not news
            self._attend([e for e in new if e.needs_ack])
            self._unflashed.extend(
                e for e in new
                if not _critical_alert(e) and (e.category in FLASH_CATEGORIES or e.level in FLASH_LEVELS)
            )
        if not self._unflashed:
            return
        now = time.monotonic()
        self._flashed_at = [t for t in self._flashed_at if now - t < self.NOTIFICATION_TIMEOUT]
        budget = MAX_FLASHES - len(self._flashed_at)
        if budget <= 0:
            if len(self._unflashed) > MAX_WAITING:  # keep the most important; the rest are only counted
                self._unflashed.sort(key=_flash_rank)
                self._unflashed_more += len(self._unflashed) - MAX_WAITING
                del self._unflashed[MAX_WAITING:]
            return
        notable = _one_per_position(self._unflashed)
        more = self._unflashed_more
        self._unflashed, self._unflashed_more = [], 0
        notable.sort(key=_flash_rank)
        total = len(notable) + more
        shown = notable if total <= budget else notable[:budget - 1]
        for e in shown:
            self.notify(e.message, severity=FLASH_LEVELS.get(e.level, "information"), markup=False)
            self._flashed_at.append(now)
        if len(shown) < total:
            self.notify(f"+{total - len(shown)} more event(s): see 6 Logs", markup=False)
            self._flashed_at.append(now)

    def _attend(self, alerts: list) -> None:
        """New alerts: the terminal bell (alerts.bell), and every critical one flashes on its
        own, longer, outside the flash budget."""
        bell = self.engine.config.alerts.bell
        critical = [e for e in alerts if _critical_alert(e)]
        if (bell == "all" and alerts) or (bell == "critical" and critical):
            self.bell()
        for e in critical:
            self.notify(f"{e.message}\n(6 Logs: a acknowledges)", title="CRITICAL", severity="error",
                        timeout=CRITICAL_TIMEOUT, markup=False)

    # == keys, help and the command palette ===================================================

    def _export_events(self) -> None:
        """The export of 6 Logs, with its filters, from anywhere."""
        self.switch_mode("logs")
        self.call_after_refresh(lambda: self.run_action("export", self.screen))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        screen = self.visible_engine_screen
        sections: list[tuple[str, Iterable[Binding]]] = []
        if screen is not None:
            sections.append((f"{screen.NAME} screen", [b for b in screen.BINDINGS if isinstance(b, Binding)]))
            sections.append(("Table", [
                Binding("up,down", "", "Move the selection"),
                Binding("pageup,pagedown", "", "Page"),
                Binding("tab", "", "Next table / field"),
                *EngineScreen.BINDINGS,
            ]))
        sections.append(("Everywhere", [b for b in self.BINDINGS if isinstance(b, Binding)] + [
            Binding("ctrl+p", "command_palette", "Command palette: every action by name"),
        ]))
        where = [f"settings: {self.settings_path or 'built-in defaults'}", f"data: {data_dir()}", f"log: {self.log_path}"]
        self.push_screen(HelpScreen(sections, " · ".join(where)))

    def action_toggle_entries(self) -> None:
        snap = self.latest_snapshot
        if snap is not None:
            commands.report(self, self.engine.stop_entries(not snap.entries_stopped))

    def _nothing(self, title: str, help_text: str, why: str) -> SystemCommand:
        """An action the palette finds although there is nothing to act on: it says why."""
        return SystemCommand(title, help_text, lambda: self.notify(why, title="Nothing to do", severity="warning"))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key, mode, cls in SCREENS:
            yield SystemCommand(f"Screen: {cls.NAME} ({key})", f"Show the {cls.NAME} screen",
                                lambda mode=mode: self.switch_mode(mode))
        yield SystemCommand("Help: keys", "Show every key", self.action_help)
        snap = self.latest_snapshot
        if snap is None:
            return
        if snap.unread_alerts:
            yield SystemCommand(f"Acknowledge all alerts ({snap.unread_alerts} unread)", "Mark every unread alert read",
                                lambda: commands.report(self, self.engine.ack_alerts(None)))
        else:
            yield self._nothing("Acknowledge all alerts", "Mark every unread alert read", "there is no unread alert")
        if snap.entries_stopped:
            yield SystemCommand("Resume all entries (book)", "Strategies enter again (E)", self.action_toggle_entries)
        else:
            yield SystemCommand("Stop all entries (book)", "No strategy enters until resumed; positions stay managed (E)",
                                self.action_toggle_entries)
        yield SystemCommand("Export events", "6 Logs: write the filtered events to CSV or JSON lines",
                            self._export_events)
        yield SystemCommand("Exit all positions", "Exit every open position at market (type EXIT to confirm)",
                            lambda: commands.exit_all(self))
        if not any(s.status == StrategyStatus.PAUSED for s in snap.strategies):
            yield self._nothing("Resume a strategy", "Resume taking entries", "no strategy is paused"
                                + ("; entries are stopped for the whole book: Resume all entries (E)"
                                   if snap.entries_stopped else ""))
        for s in snap.strategies:
            if s.status == StrategyStatus.PAUSED:
                yield SystemCommand(f"Resume {s.id}", "Resume taking entries",
                                    lambda s=s: commands.toggle_pause(self, s))
            else:
                yield SystemCommand(f"Pause {s.id}", "Stop taking entries; open positions stay managed",
                                    lambda s=s: commands.toggle_pause(self, s))
            yield SystemCommand(f"Enter now: {s.id}", f"Enter {', '.join(s.symbols)} now (confirm)",
                                lambda s=s: commands.enter_now(self, s), discover=False)
            yield SystemCommand(f"Details: {s.id}", "Its configuration and what an entry would risk now",
                                lambda s=s: commands.strategy_details(self, s), discover=False)
            if s.open_positions:
                yield SystemCommand(f"Exit strategy {s.id}", "Exit its open positions at market (confirm)",
                                    lambda s=s: commands.exit_strategy(self, s), discover=False)
        if not snap.positions:
            for title, help_text in (("Exit position", "Exit at market (confirm)"),
                                     ("Edit levels", "Stop / target / trailing distance")):
                yield self._nothing(title, help_text, "there is no open position")
        for p in snap.positions:
            label = f"#{p.group_id} {p.symbol} ({p.strategy_id})"
            yield SystemCommand(f"Exit position {label}", "Exit at market (confirm)",
                                lambda p=p: commands.exit_position(self, p), discover=False)
            yield SystemCommand(f"Edit levels {label}", "Stop / target / trailing distance",
                                lambda p=p: commands.edit_levels(self, p), discover=False)
        queue_actions = (("Promote", "First in line for the next free slot", commands.promote_signal),
                         ("Remove", "Take it out of the queue (confirm)", commands.remove_signal),
                         ("Force-add", "Enter it now, beyond the pool (confirm)", commands.force_add_signal))
        if not snap.queue:
            for verb, help_text, _ in queue_actions:
                yield self._nothing(f"{verb} queued signal", help_text, "the signal queue is empty (5 Queue)")
        for v in snap.queue:
            for verb, help_text, command in queue_actions:
                yield SystemCommand(f"{verb} queued signal #{v.id} {v.strategy_id} {v.symbol}", help_text,
                                    lambda v=v, command=command: command(self, v), discover=False)
        if not snap.risk:
            why = ("the risk engine is not configured ([risk_engine] in the settings)" if snap.risk_engine == "off"
                   else "no losing position is in the risk engine's view (7 Risk)")
            yield self._nothing("Risk: run plan now", "Close the winners' parts, then the loser (confirm)", why)
        for r in snap.risk:
            label = f"#{r.group_id} {r.symbol} ({r.strategy_id})"
            yield SystemCommand(f"Risk: run plan now {label}", "Close the winners' parts, then the loser (confirm)",
                                lambda r=r: commands.risk_run(self, r), discover=False)
            skipped, blocked = r.hold == RiskHold.SKIPPED, r.hold == RiskHold.BLOCKED
            yield SystemCommand(f"Risk: {'undo skip' if skipped else 'skip once'} {label}",
                                "Leave it until it stops being eligible", lambda r=r: commands.risk_skip(self, r),
                                discover=False)
            yield SystemCommand(f"Risk: {'unblock' if blocked else 'block'} {label}",
                                "The risk engine never closes it while blocked", lambda r=r: commands.risk_block(self, r),
                                discover=False)


def _critical_alert(e) -> bool:
    return e.needs_ack and e.level == "critical"


def _one_per_position(events: list) -> list:
    best: dict[int, object] = {}
    out = []
    for e in events:
        if e.level in FLASH_LEVELS or e.group_id is None:
            out.append(e)
        elif e.group_id not in best or _flash_rank(e) <= _flash_rank(best[e.group_id]):
            best[e.group_id] = e
    return out + list(best.values())


def _flash_rank(e) -> tuple[int, int]:
    if e.level in FLASH_LEVELS:
        return (0, -e.id)
    return (1 + FLASH_CATEGORIES.index(e.category), -e.id)


def make_app(settings: Any, engine: EngineService, settings_path: Path | None = None, notice: str = "") -> TraderApp:
    """The TUI over `engine` (not started yet: the app starts it on mount and stops it on quit)."""
    return TraderApp(settings, engine, settings_path, notice)
