"""6 Logs: the engine's event stream (not the log file), where the operator finds any event
of the last days by keyboard and works off the alerts.

From the top: the unread alerts, newest first (only while there are some; `a` acknowledges
one, `A` all); a filter bar (minimum level, category, strategy, symbol, and a text search
typed incrementally); the events, oldest at the top, coloured by level, unread alerts
marked ●. The table follows the newest event until the operator moves up; `end` follows
again. Moving to the top row pages older events in from the database, down to the
beginning of the history. `enter` shows an event in full, `ctrl+e` exports what the filter
matches to CSV or JSON lines.

The rows are one EventQuery's page: a change of filter asks the engine for the newest
matching page (a worker; a newer filter cancels an older request), and each render appends
only the snapshot's events newer than any seen before, so the cost of a render does not
grow with the rows held."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Iterable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Input, Select

from services.event_categories import CATEGORIES
from services.event_log import LEVELS, EventQuery
from services.views import EngineSnapshot, EventView

from . import commands
from .base import EngineScreen, set_subtitle, set_title
from .format import DIM, LEVEL_STYLE, WARN, Cell, cell, hms, num
from .widgets.event_detail import EventDetailScreen
from .widgets.event_table import EventTable
from .widgets.export_dialog import ExportDialog
from .widgets.keyed_table import FILL, KEY, NAME, KeyedTable

log = logging.getLogger("tui_trader.screens")

PAGE = 500
"""Events asked of the engine at a time (a filter's newest page, each older page)."""

MAX_ROWS = 5_000
"""Events held at most (a new event costs a diff of the rows held: ~2 ms at 5,000). Paging
further back drops the newest ones (end loads them again); following the newest drops the
oldest, DROP at a time so it happens rarely."""
DROP = PAGE

SEARCH_DELAY_S = 0.15
"""The search applies once typing pauses this long (enter applies it at once)."""

LEVEL_OPTIONS = [("all levels", "")] + [(f"≥ {level}" if level != "critical" else level, level)
                                        for level in LEVELS if level != "debug"]
FILTERS = {"level": "all levels", "category": "all categories", "strategy": "all strategies",
           "symbol": "all symbols"}
"""Each filter's Select and what its "no filter" option says."""

LEVEL_LABEL = {"debug": "DEBUG", "info": "INFO", "warning": "WARN", "error": "ERROR", "critical": "CRIT"}
MESSAGE_STYLE = {"warning": WARN, "error": "red", "critical": "bold red"}
UNREAD = "●"
READ = "○"

COLUMNS = [("alert", "", NAME), ("time", "Time>", NAME), ("level", "Level", KEY), ("category", "Category", 2),
           ("position", "#>", 1), ("message", "Message", FILL)]
"""No strategy or symbol column: messages name them, and the message needs the width at 80
columns (the filters select by them; enter shows them). The message takes the width left,
cut with an ellipsis: the table never scrolls sideways (a scrollbar would cover a row)."""
ALERT_COLUMNS = [("time", "Time>", NAME), ("level", "Level", KEY), ("category", "Category", 1),
                 ("message", "Message", FILL)]

FILTER_KEYS = Binding.Group("Filter")


def time_text(ts: float, today: float) -> str:
    """HH:MM:SS today (UTC), with the date before that: the history spans days."""
    if ts >= today:
        return hms(ts)
    return time.strftime("%m-%d %H:%M:%S", time.gmtime(ts))


def level_cell(level: str) -> Cell:
    return cell(LEVEL_LABEL.get(level, level.upper()), LEVEL_STYLE.get(level, DIM) if level != "debug" else DIM)


def alert_mark(e: EventView) -> Cell:
    if not e.needs_ack:
        return cell("")
    return cell(UNREAD, f"bold {WARN}") if e.acked_at is None else cell(READ, DIM)


def event_cells(e: EventView, today: float) -> tuple:
    message_style = MESSAGE_STYLE.get(e.level, "")
    if e.unread and not message_style:
        message_style = "bold"
    return (alert_mark(e), num(time_text(e.ts, today), DIM), level_cell(e.level), cell(e.category, "cyan"),
            num(str(e.group_id) if e.group_id is not None else ""), cell(e.message, message_style))


def alert_cells(e: EventView, today: float) -> tuple:
    return (num(time_text(e.ts, today), DIM), level_cell(e.level), cell(e.category, "cyan"),
            cell(e.message, MESSAGE_STYLE.get(e.level, "bold")))


def _newest_first(key: str, e: EventView) -> int:
    return -e.id


class LogsScreen(EngineScreen):
    NAME = "Logs"
    CSS_PATH = "logs.tcss"
    AUTO_FOCUS = "#events"
    VERTICAL_BREAKPOINTS = [(0, "-short"), (28, "-tall")]  # 80x24: fewer alerts in view
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # 80 columns: narrower filters

    BINDINGS = [
        Binding("slash", "search", "Search", tooltip="Search the messages (typing filters; enter or esc: back "
                "to the events)", id="logs.search"),
        Binding("l", "filter('level')", "Level", tooltip="Filter by minimum level", id="logs.level",
                group=FILTER_KEYS),
        Binding("c", "filter('category')", "Category", tooltip="Filter by category", id="logs.category",
                group=FILTER_KEYS),
        Binding("s", "filter('strategy')", "Strategy", tooltip="Filter by strategy", id="logs.strategy",
                group=FILTER_KEYS),
        Binding("y", "filter('symbol')", "Symbol", tooltip="Filter by symbol", id="logs.symbol", group=FILTER_KEYS),
        Binding("r", "reset", "Reset", show=False, tooltip="Clear every filter and the search", id="logs.reset"),
        # priority: the table's own end (last column) and enter (select) would hide these
        Binding("end", "follow", "Follow", priority=True,
                tooltip="Jump to the newest event and follow new ones (paused when you move up)", id="logs.follow"),
        Binding("home", "oldest", "Oldest", show=False,
                tooltip="The oldest event loaded; at the top, older ones load from the history", id="logs.oldest"),
        Binding("enter", "details", "Details", priority=True, show=False,
                tooltip="The highlighted event in full, with its payload", id="logs.details"),
        Binding("a", "ack", "Ack",
                tooltip="Acknowledge the highlighted alert (else the newest unread one)", id="logs.ack"),
        Binding("A", "ack_all", "Ack all", tooltip="Acknowledge every unread alert", id="logs.ack_all"),
        Binding("ctrl+e", "export", "Export", priority=True,
                tooltip="Write the events the filter matches to a CSV or JSON-lines file", id="logs.export"),
        Binding("escape", "back", "Back", show=False, tooltip="From the search or a filter back to the events",
                id="logs.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.event_query = EventQuery()
        self.rows: dict[str, EventView] = {}
        """The events shown, oldest first, by str(id)."""
        self.unread: set[int] = set()
        """The rows shown as unread alerts (checked against the snapshot's alerts as they change)."""
        self.seen_id = 0
        """The newest event id taken from a snapshot or a page: later snapshots add only newer ones."""
        self.tail_complete = True
        """The rows reach the newest matching event (False after newer ones were dropped: end reloads)."""
        self.at_beginning = False
        """The oldest matching event is loaded."""
        self.fetching = ""
        """"newest" (a filter's first page), "older" (paging back) or "" while nothing is asked."""
        self.error = ""
        self.now = 0.0
        self._started = False
        self._today = -1.0
        """The UTC day the times are shown for (an older event shows its date too)."""
        self._cells = self._alert_cells = tuple  # made for the day at each render where it turns
        self._alerts_shown: tuple[EventView, ...] | None = None
        # the category filter offers every known category at once; others are added as seen
        self._values: dict[str, set[str]] = {"category": set(CATEGORIES), "strategy": set(), "symbol": set()}
        self._stale_options: set[str] = set(self._values)
        self._search_timer: Timer | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="alerts-box"):
            strip = KeyedTable(ALERT_COLUMNS, sort_key=_newest_first, id="alerts")
            strip.show_header = False
            yield strip
        with Horizontal(id="filters"):
            for name, everything in FILTERS.items():
                options = LEVEL_OPTIONS if name == "level" else [(everything, "")]
                yield Select(options, value="", allow_blank=False, compact=True, id=name)
            yield Input(placeholder="/ search", compact=True, id="search")
        with Vertical(id="events-box"):
            yield EventTable(COLUMNS, id="events")

    @property
    def table(self) -> EventTable:
        return self.query_one("#events", EventTable)

    @property
    def strip(self) -> KeyedTable:
        return self.query_one("#alerts", KeyedTable)

    # == rendering ===========================================================================

    def render_snapshot(self, snap: EngineSnapshot) -> None:
        self.now = snap.ts
        today = snap.ts - snap.ts % 86_400
        if today != self._today:  # new cell makers re-draw every row: only when the day turns
            self._today = today
            self._cells = lambda e: event_cells(e, today)
            self._alert_cells = lambda e: alert_cells(e, today)
            self.table.sync(self.rows, self._cells)
            self.strip.sync({str(e.id): e for e in self._alerts_shown or ()}, self._alert_cells)
        if not self._started:  # the first render shows the snapshot's events as they are
            self._started = True
            cfg = self.engine.config
            self._values["strategy"].update([*cfg.strategies, *(s.id for s in snap.strategies)])
            self._values["symbol"].update(cfg.symbols)
            self._show_rows({str(e.id): e for e in snap.events})
            self.seen_id = snap.events[-1].id if snap.events else 0
            self._learn(snap.events)
        else:
            self._append_new(snap)
        if snap.alerts is not self._alerts_shown:  # the engine keeps the same tuple until alerts change
            self._show_alerts(snap)
        self._refresh_options()
        self._show_state()

    def _show_rows(self, rows: dict[str, EventView], follow: bool = True) -> None:
        self.rows = rows
        self.unread = {e.id for e in rows.values() if e.unread}
        table = self.table
        table.sync(rows, self._cells)
        if follow:
            table.move_to_newest()

    def _append_new(self, snap: EngineSnapshot) -> None:
        """Add the snapshot's events newer than any seen that match the filter."""
        events = snap.events
        if self.fetching == "newest" or not events or events[-1].id <= self.seen_id:
            return  # a page is on its way: it sets where to go on from
        start = len(events)
        while start and events[start - 1].id > self.seen_id:
            start -= 1
        new = events[start:]
        missed = start == 0 and new[0].id > self.seen_id + 1  # more came than a snapshot holds
        self.seen_id = new[-1].id
        self._learn(new)
        if not self.tail_complete:
            return
        table = self.table
        if missed:
            if table.following:
                self._reload()
            else:
                self.tail_complete = False  # the operator reads older rows: end loads the newest
            return
        query = self.event_query
        matching = [e for e in new if query.matches(e)] if query.active else new
        if not matching:
            return
        if not table.following and len(self.rows) + len(matching) > MAX_ROWS:
            self.tail_complete = False  # keep the rows the operator is reading where they are
            return
        rows = self.rows
        for e in matching:
            rows[str(e.id)] = e
            if e.unread:
                self.unread.add(e.id)
        if len(rows) > MAX_ROWS:
            self._drop_oldest()
        table.sync(rows, self._cells)
        if table.following:
            table.move_to_newest()

    def _drop_oldest(self) -> None:
        keep = list(self.rows.items())[len(self.rows) - MAX_ROWS + DROP:]
        self.rows = dict(keep)
        self.unread &= {e.id for _, e in keep if e.unread}
        self.at_beginning = False

    def _show_alerts(self, snap: EngineSnapshot) -> None:
        """The strip, and the rows whose alert was acknowledged since the last render."""
        alerts = snap.alerts
        self._alerts_shown = alerts
        strip, box = self.strip, self.query_one("#alerts-box")
        strip.sync({str(e.id): e for e in alerts}, self._alert_cells)
        if box.display != bool(alerts):
            box.display = bool(alerts)
            if not alerts and strip.has_focus:
                self.table.focus()
        set_title(box, f"Unread alerts {snap.unread_alerts} · a acknowledge · A all")
        strip.styles.height = len(alerts)  # as tall as its rows (the CSS caps it, then it scrolls)
        if not self.unread:
            return
        still = {e.id for e in alerts}
        listed_all = len(alerts) >= snap.unread_alerts
        oldest_listed = alerts[-1].id if alerts else 0
        # An alert missing from the snapshot's list was acknowledged, unless the list (the
        # newest 200) is too short to say: older than its oldest, with more unread than listed.
        acked = {i for i in self.unread if i not in still and (listed_all or i > oldest_listed)}
        if not acked:
            return
        self.unread -= acked
        in_memory = {e.id: e for e in snap.events if e.id in acked}
        for i in acked:
            key = str(i)
            if key in self.rows:
                # as the engine holds it; else acknowledged by now (its exact time is in the database)
                self.rows[key] = in_memory.get(i) or replace(self.rows[key], acked_at=snap.ts)
        self.table.sync(self.rows, self._cells)

    def _show_state(self) -> None:
        """Following or paused, how many events, where the history begins, and the filter."""
        table = self.table
        parts = []
        if self.fetching == "newest":
            parts.append("loading…")
        elif not self.tail_complete:
            parts.append("newer events not loaded: end loads them")
        else:
            parts.append("following" if table.following else "paused: end to follow")
        n = len(self.rows)
        parts.append(f"{n:,} event{'s' if n != 1 else ''}")
        if self.fetching == "older":
            parts.append("loading older events…")
        elif self.at_beginning:
            parts.append("beginning of history")
        parts.append(f"matching {self.event_query.describe()}" if self.event_query.active else "no filter")
        if self.error:
            parts.append(self.error)
        set_subtitle(self.query_one("#events-box"), " · ".join(parts))

    # == filter options ======================================================================

    def _learn(self, events: Iterable[EventView]) -> None:
        """Add categories, strategies and symbols not seen before to the filters' options."""
        values, stale = self._values, self._stale_options
        for e in events:
            for name, value in (("category", e.category), ("strategy", e.strategy_id), ("symbol", e.symbol)):
                if value and value not in values[name]:
                    values[name].add(value)
                    stale.add(name)

    def _refresh_options(self) -> None:
        for name in list(self._stale_options):
            select = self.query_one(f"#{name}", Select)
            if select.expanded:
                continue  # not under the operator's cursor: at a later render
            self._stale_options.discard(name)
            current = select.value
            select.set_options([(FILTERS[name], "")] + [(v, v) for v in sorted(self._values[name])])
            select.value = current  # set_options resets it; the query does not change

    # == loading pages =======================================================================

    def _reload(self) -> None:
        """Ask for the newest page of the current filter (replacing the rows when it comes)."""
        self.fetching = "newest"
        self._load(self.event_query, None)
        self._show_state()

    def _load_older(self) -> None:
        if self.fetching or self.at_beginning:
            return
        if not self.rows:
            self._reload()
            return
        self.fetching = "older"
        self._load(self.event_query, int(next(iter(self.rows))))
        self._show_state()

    @work(exclusive=True, group="events")
    async def _load(self, query: EventQuery, before_id: int | None) -> None:
        try:
            page = await self.engine.find_events(query, before_id=before_id, limit=PAGE)
            events, error = page.events, page.error
        except Exception as exc:  # find_events reports its failures: anything else is a bug, shown not raised
            log.exception("reading the event history failed")
            events, error = [], f"the history cannot be read: {exc}"
        self.fetching = ""
        self.error = error
        oldest_first = events[::-1]
        if before_id is None:
            self._show_newest(oldest_first, error)
        else:
            self._show_older(oldest_first, error)
        self._show_state()

    def _show_newest(self, events: list[EventView], error: str) -> None:
        self.at_beginning = not error and len(events) < PAGE
        self.tail_complete = True
        if events:
            self.seen_id = max(self.seen_id, events[-1].id)
        self._learn(events)
        self._show_rows({str(e.id): e for e in events})
        snap = self.host.latest_snapshot
        if snap is not None:
            self._append_new(snap)  # what came while the page was read

    def _show_older(self, events: list[EventView], error: str) -> None:
        self.at_beginning = not error and len(events) < PAGE
        if not events:
            return
        self._learn(events)
        table = self.table
        above = table.cursor_row - round(table.scroll_y)  # the cursor's line on screen, kept
        rows = {str(e.id): e for e in events}
        rows.update(self.rows)
        if len(rows) > MAX_ROWS:  # drop the newest: the operator is reading the oldest
            rows = dict(list(rows.items())[:MAX_ROWS])
            self.tail_complete = False
            table.following = False
        self._show_rows(rows, follow=False)  # the cursor stays on its event
        row = table.cursor_row
        table.call_after_refresh(table.scroll_to, y=max(0, row - above), animate=False)

    # == operator actions ====================================================================

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        focused = self.focused
        if action in ("follow", "details"):
            # in the search box end and enter are the box's; on a filter enter opens it
            return isinstance(focused, DataTable) or focused is None or (
                action == "follow" and isinstance(focused, Select))
        if action == "back":
            return not isinstance(focused, DataTable)
        return True

    def _apply_filters(self) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
            self._search_timer = None
        values = {name: self.query_one(f"#{name}", Select).value for name in FILTERS}
        query = EventQuery(min_level=values["level"], category=values["category"], strategy=values["strategy"],
                           symbol=values["symbol"], text=self.query_one("#search", Input).value.strip())
        if query != self.event_query:
            self.event_query = query
            self._reload()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        before = self.event_query
        self._apply_filters()
        if self.event_query != before and event.select.has_focus_within:
            self.table.focus()  # picked: back to the events

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(SEARCH_DELAY_S, self._apply_filters)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._apply_filters()
        self.table.focus()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_filter(self, name: str) -> None:
        select = self.query_one(f"#{name}", Select)
        select.focus()
        select.action_show_overlay()

    def action_back(self) -> None:
        self._apply_filters()  # what was typed applies now
        self.table.focus()

    def action_reset(self) -> None:
        for name in FILTERS:
            self.query_one(f"#{name}", Select).value = ""
        self.query_one("#search", Input).value = ""
        self._apply_filters()
        self.table.focus()

    def action_follow(self) -> None:
        table = self.table
        if not self.tail_complete or self.fetching:
            self._reload()
        else:
            table.move_to_newest()
        table.focus()
        self._show_state()

    def action_oldest(self) -> None:
        self.table.focus()
        self.table.action_scroll_top()

    def on_event_table_reached_top(self, message: EventTable.ReachedTop) -> None:
        self._load_older()
        self._show_state()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = self.table
        if event.data_table is not table or event.cursor_row != table.cursor_row:
            return  # another table, or a move already superseded
        if not table.following and self.tail_complete and not self.fetching:
            table.following = table.cursor_row == table.row_count - 1  # back on the newest: follow
        elif table.cursor_row != table.row_count - 1:
            table.following = False  # e.g. a click on an older row
        self._show_state()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_details()  # a click on the highlighted row (enter is the details key)

    def _highlighted(self) -> EventView | None:
        """The event under the cursor of the focused table (the strip's or the events')."""
        if self.focused is self.strip:
            key = self.strip.selected_key
            return next((e for e in self._alerts_shown or () if str(e.id) == key), None)
        key = self.table.selected_key
        return self.rows.get(key) if key is not None else None

    def action_details(self) -> None:
        e = self._highlighted()
        if e is None:
            self.notify("No event highlighted", severity="warning")
            return
        self.app.push_screen(EventDetailScreen(e))

    def action_ack(self) -> None:
        e = self._highlighted()
        if e is None or not e.unread:
            alerts = self._alerts_shown
            e = alerts[0] if alerts else None  # the newest unread alert
        if e is None:
            self.notify("No unread alert to acknowledge", severity="warning")
            return
        commands.report(self.app, self.engine.ack_alerts([e.id]))

    def action_ack_all(self) -> None:
        commands.report(self.app, self.engine.ack_alerts(None))

    def action_export(self) -> None:
        query = self.event_query
        folder = self.host.export_dir
        name = time.strftime("events-%Y%m%d-%H%M%S.csv", time.gmtime(self.now))
        what = (f"Export every event in the history matching {query.describe()}." if query.active
                else "Export every event in the history (no filter).")

        def done(result) -> None:
            if result is not None:
                commands.report(self.app, result)

        self.app.push_screen(ExportDialog(what, folder / name, folder,
                                          lambda path: self.engine.export_events(query, path)), done)
