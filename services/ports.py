"""The engine's ports: what it needs from the outside (a feed, an execution client, instrument
rules, a store, a clock) and what it offers (EngineCommands), as typed protocols. Adapters
implement them structurally; tests/test_ports.py checks by reflection that the real ones do.

Only typing is imported at run time, so every module can import this one without a cycle.
The screens import it too, so it names nothing of the store, the brokers or the engine, not
even for types (import-linter counts TYPE_CHECKING imports): the store's LoadedState is typed
Any below."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Protocol

from .domain import ExitReason

if TYPE_CHECKING:
    from pathlib import Path

    from .config import StrategyConfig, TradingConfig
    from .domain import Record
    from .event_log import EventQuery
    from .market import Quote, QuoteBook
    from .orders import ExecEvent, OpenOrder, OrderRequest
    from .rules.precision import Rules
    from .views import CommandResult, EngineSnapshot, EventPage, EventView, RiskPreview


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds."""

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""


# -- market data ------------------------------------------------------------------------------

QuoteHandler = Callable[["Quote"], None]


@dataclass(slots=True)
class FeedHealth:
    """Updated by the feed; read by the engine for the status bar and the stale rule."""

    name: str
    connected: bool = False
    last_event_at: float | None = None
    error: str = ""

    def is_healthy(self, now: float, max_age_s: float) -> bool:
        return self.connected and self.last_event_at is not None and now - self.last_event_at <= max_age_s


class Feed(Protocol):
    """Pushes quotes of the subscribed symbols to one callback (a WebSocket feed with a
    REST-polling fallback is one more implementation)."""

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols subscribed now."""

    @property
    def health(self) -> FeedHealth: ...

    async def start(self, on_quote: QuoteHandler) -> None:
        """Begin delivering quotes to on_quote on the running loop; returns once started."""

    async def stop(self) -> None:
        """Stop delivering quotes and release connections."""

    def subscribe(self, symbols: Iterable[str]) -> None:
        """Deliver these symbols' quotes too (from the feed's next step or message on)."""

    def unsubscribe(self, symbols: Iterable[str]) -> None:
        """Stop delivering these symbols' quotes."""

    on_error: Callable[[str, Exception], None] | None
    """Told (symbol, exception) when delivering a quote raised outside on_quote's own guard."""

    def continue_from(self, prices: dict[str, float]) -> None:
        """The last stored price of each symbol: a simulated market goes on from there; a
        venue's feed has its own prices and ignores them."""


# -- execution and instruments ----------------------------------------------------------------


class ExecutionClient(Protocol):
    """Where orders go. Submit and cancel are requests: what becomes of them arrives later
    as ExecEvents through the bound handler (services.orders has their lifecycle)."""

    @property
    def name(self) -> str: ...

    def bind(self, on_event: Callable[[ExecEvent], None]) -> None:
        """Where the events about orders are reported."""

    def submit(self, request: OrderRequest) -> None:
        """Send an order."""

    def cancel(self, order_id: int) -> None:
        """Ask to cancel a working order (it may fill meanwhile: the events say)."""

    def on_quote(self, q: Quote) -> None:
        """Each quote the engine takes: a paper client fills against them, a live one ignores them."""

    # What the venue holds, for reconciliation at start.
    def open_orders(self) -> list[OpenOrder]: ...

    def positions(self) -> dict[str, float]:
        """Quantity held per symbol."""

    def balances(self) -> dict[str, float]:
        """Amount held per asset."""


class InstrumentProvider(Protocol):
    """Tick size, lot step and minimum notional per symbol."""

    def rules(self, symbol: str) -> Rules | None:
        """The rules of a symbol, or None while they are not known (the entry is held)."""

    async def refresh(self) -> None:
        """Load the rules again (a venue's change them; the settings' change only at a restart)."""


# -- persistence ------------------------------------------------------------------------------


class Store(Protocol):
    """Where the engine's records go. A store that can fail says so through the three
    callbacks, which the engine sets (it raises and clears the alerts)."""

    needs_marks: bool
    """False: the marks of open legs (touch()) are not sent to it (replay's keeps none)."""
    on_failure: Callable[[str], None] | None  # why writes started failing
    on_recovery: Callable[[int], None] | None  # writes land again; how many were waiting
    on_refused: Callable[[str], None] | None  # the database refused a record for good (a bug)

    @property
    def ok(self) -> bool:
        """False while writes fail (they are queued meanwhile)."""

    def open(self, day_start: float = 0.0) -> Any:
        """Load what the engine resumes from (a services.store.loaded.LoadedState)."""

    def start(self) -> None:
        """Begin writing behind (after open)."""

    def write(self, records: Iterable[Record]) -> None:
        """Persist these records (new or changed) before the engine acts on them."""

    def touch(self, record: Record) -> None:
        """This record's marks changed: written behind, not before acting."""

    async def drain(self) -> None:
        """A clean stop's wait for the queued writes, without blocking the loop."""

    def close(self, force: bool = False) -> None:
        """Last writes, then close; force: do not wait on a stuck database."""

    # The event history (blocking: the engine calls these in a worker thread).
    def read_events(self, query: EventQuery, *, before_id: int | None = None, limit: int = 200) -> list[EventView]: ...

    def iter_events(self, query: EventQuery, up_to_id: int | None = None) -> Iterator[EventView]: ...

    def purge_events(self, cutoff_ts: float, max_rows: int) -> int: ...


# -- what the engine offers -------------------------------------------------------------------


class ConfiguredStrategy(Protocol):
    @property
    def config(self) -> StrategyConfig: ...


class EngineCommands(Protocol):
    """The engine's command and snapshot surface: what the screens, the CLI inboxes, the
    attachments and the HTTP API use. Commands answer a CommandResult; state is read from
    snapshots (frozen views), never from the engine's records."""

    # -- read-only state --
    @property
    def config(self) -> TradingConfig: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def state(self) -> str:
        """stopped | starting | running | stopping"""

    @property
    def mode(self) -> str: ...

    @property
    def book(self) -> QuoteBook:
        """The latest quotes (the signal inbox waits for fresh ones after a start)."""

    @property
    def strategies(self) -> Mapping[str, ConfiguredStrategy]: ...

    @property
    def first_event_id(self) -> int:
        """The first event of this run."""

    @property
    def event_listeners(self) -> list[Callable[[EventView], None]]:
        """Called with every event as it is raised."""

    def snapshot(self) -> EngineSnapshot: ...

    def subscribe(self, callback: Callable[[EngineSnapshot], None]) -> Callable[[], None]:
        """Receive snapshots, coalesced to at most engine.publish_hz; returns the unsubscribe."""

    # -- entries and signals --
    def enter_now(self, strategy_id: str, symbol: str | None = None, source: str = "tui",
                  price: float | None = None, payload: dict | None = None, timeframe: str = "",
                  size: float | None = None) -> CommandResult: ...

    def exit_signal(self, strategy_id: str, symbol: str | None = None, source: str = "cli",
                    price: float | None = None, payload: dict | None = None, timeframe: str = "") -> CommandResult: ...

    def promote_signal(self, queued_id: int) -> CommandResult: ...

    def remove_signal(self, queued_id: int) -> CommandResult: ...

    def force_add(self, queued_id: int) -> CommandResult: ...

    def risk_preview(self, strategy_id: str) -> tuple[RiskPreview, ...]: ...

    # -- exits and levels --
    def exit_position(self, group_id: int, reason: ExitReason = ExitReason.MANUAL) -> CommandResult: ...

    def exit_positions(self, group_ids: Iterable[int]) -> CommandResult: ...

    def exit_strategy(self, strategy_id: str) -> CommandResult: ...

    def exit_all(self) -> CommandResult: ...

    def keep_managing(self, strategy_id: str) -> CommandResult: ...

    def edit_levels(self, group_id: int, *, leg_id: int | None = None, stop: float | None = ...,
                    target: float | None = ..., trail_distance: str | float | None = ...,
                    trail_activation: str | float | None = ..., time_exit_at: float | None = ...,
                    confirm: bool = False) -> CommandResult:
        """A level left out stays as it is; None removes it."""

    # -- the switches --
    def stop_entries(self, stopped: bool = True) -> CommandResult: ...

    def pause(self, strategy_id: str) -> CommandResult: ...

    def resume(self, strategy_id: str) -> CommandResult: ...

    # -- the risk engine --
    def risk_run(self, group_id: int) -> CommandResult: ...

    def risk_skip(self, group_id: int) -> CommandResult: ...

    def risk_block(self, group_id: int) -> CommandResult: ...

    # -- events and alerts --
    def note(self, level: str, category: str, message: str, *, strategy_id: str | None = None,
             payload: dict | None = None, needs_ack: bool = False) -> None:
        """An event from a component attached to the engine."""

    def alerts_view(self) -> tuple[EventView, ...]: ...

    def ack_alerts(self, ids: Iterable[int] | None = None) -> CommandResult: ...

    async def find_events(self, query: EventQuery, before_id: int | None = None, limit: int = 200) -> EventPage:
        """A page of the history, newest first."""

    async def export_events(self, query: EventQuery, path: Path) -> CommandResult: ...


class EngineService(EngineCommands, Protocol):
    """The engine as the process that owns it holds it (the TUI app, the headless runner)."""

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """The clean stop: positions stay open."""

    def stop_now(self) -> None:
        """The forced stop: nothing more is waited for."""
