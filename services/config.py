"""Configuration models the engine consumes. The shell (tui_trader.settings) loads them
from settings.toml and the environment; services only read them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationError,
                      model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError

from .rules.bounds import MAX_NUMBER, MAX_SECONDS, MIN_NUMBER
from .rules.dca import grid_problems
from .rules.distance import Distance, parse_distance
from .rules.levels import trail_distance_problem
from .rules.schedule import ScheduleConfig, TimeOfDay, parse_timezone

# A field error for inf or nan is "Input should be a finite number" (_Model's allow_inf_nan);
# these name the bounds of the rest.
Positive = Annotated[float, Field(ge=MIN_NUMBER, lt=MAX_NUMBER)]
NonNegative = Annotated[float, Field(ge=0, lt=MAX_NUMBER)]
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS)]
SecondsOrZero = Annotated[float, Field(ge=0, le=MAX_SECONDS)]


def _no_nul(text: str) -> str:
    if "\x00" in text:  # a path or a command cannot hold one: it fails where it is used
        raise ValueError("must not contain a NUL character")
    return text


Text = Annotated[str, AfterValidator(_no_nul)]


def _refuse(model: BaseModel, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
    """Raise what a check across fields found, each problem at the field it names (a path
    relative to `model`: pydantic puts the model's own path in front), like a field error."""
    if problems:
        raise ValidationError.from_exception_data(type(model).__name__, [
            InitErrorDetails(type=PydanticCustomError("value_error", "{reason}", {"reason": reason}), loc=loc,
                             input=None)
            for loc, reason in problems])


DistanceValue = Annotated[Distance, BeforeValidator(parse_distance), PlainSerializer(str)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class EngineConfig(_Model):
    mode: Literal["paper", "live"] = "paper"
    """paper (simulated fills) or live (refused until a live broker is armed)."""
    max_open_positions: int = Field(10, ge=1, le=10_000)
    """Execution pool size: at most this many position groups open at once."""
    publish_hz: float = Field(4.0, gt=0, le=30)
    """How often snapshots are published to the UI (per second)."""
    tick_interval_s: float = Field(0.25, gt=0, le=10)
    """How often time-based rules (time exits, stale marks) are checked."""
    queue_ttl_s: Seconds = 900.0
    """An entry signal that found the pool full waits in the queue at most this long."""
    signal_ttl_s: Seconds = 300.0
    """A signal from another process (`tui-trader signal`) older than this when an engine
    reads it is not acted on: it is marked expired."""
    signal_price_gap_pct: float = Field(10.0, gt=0, le=100)
    """An entry signal whose price is further than this from the market (% of the mark) is
    refused with both prices: another symbol's price or a misplaced decimal point."""
    orders_on_stop: Literal["cancel", "keep"] = "cancel"
    """What a clean stop does with working orders: cancel them (an unfilled entry is given
    up; an exit is sent again at the next start), or keep them (they are left working and
    taken up again at the next start)."""


class StoreConfig(_Model):
    url: Text = ""
    """SQLAlchemy URL; empty means SQLite in the user's data directory."""
    flush_interval_s: float = Field(1.0, gt=0, le=60)
    """Write-behind interval for marks and analytics."""


class FeedConfig(_Model):
    kind: Literal["simulated"] = "simulated"
    """Market data source. Only the built-in simulated market exists today."""
    seed: int | None = Field(None, ge=0, lt=2**63)
    """Seed of the simulated market: the same seed gives the same path (from the same prices).
    Unset, the path is new at every run."""
    max_quote_age_s: float = Field(5.0, ge=0.5, le=3600)
    """A quote older than this is stale: it never triggers an entry or an exit."""


class PaperConfig(_Model):
    slippage_bps: float = Field(1.0, ge=0, le=1000)
    """Market orders fill at the touch plus this much against the trader."""
    maker_fee_bps: float = Field(1.0, ge=0, le=1000)
    """Fee on resting limit fills."""
    taker_fee_bps: float = Field(4.0, ge=0, le=1000)
    """Fee on market and marketable limit fills."""
    starting_cash: Positive = 100_000.0
    """Paper account cash at the first start."""
    events: Literal["immediate", "async"] = "immediate"
    """How the paper venue answers an order: immediate (inside the call that sent it) or
    async (after the call returns, after latency_ms), as a live venue does."""
    latency_ms: float = Field(0.0, ge=0, le=60_000)
    """With async events: how long each answer takes to arrive (milliseconds, at most a minute)."""

    @model_validator(mode="after")
    def _latency_for_async(self) -> "PaperConfig":
        if self.latency_ms and self.events != "async":
            _refuse(self, [(("latency_ms",), 'applies only to events = "async": set events = "async" '
                                              'or latency_ms = 0')])
        return self


class SymbolConfig(_Model):
    start_price: Positive
    """First simulated price."""
    drift: float = Field(0.0, ge=-100, le=100)
    """Annualised drift of the simulated price (0.1 = +10 % a year)."""
    volatility: float = Field(0.5, ge=0, le=100)
    """Annualised volatility of the simulated price (0.5 = 50 %); the demo uses lively values."""
    spread_bps: float = Field(2.0, ge=0, le=10_000)
    """Simulated bid/ask spread around the price."""
    tick_interval_s: float = Field(0.5, gt=0, le=3600)
    """Seconds between simulated quotes."""
    tick_size: Positive | None = None
    """Price increment of the instrument; unset: prices are not rounded."""
    lot_step: Positive | None = None
    """Quantity increment; unset: quantities are not rounded."""
    min_notional: NonNegative = 0.0
    """Smallest order value (price x quantity) the venue accepts."""

    @model_validator(mode="after")
    def _tick_below_price(self) -> "SymbolConfig":
        if self.tick_size is not None and self.tick_size > self.start_price:  # a sell would round to 0
            _refuse(self, [(("tick_size",),
                            f"must not be above start_price ({self.tick_size:g} > {self.start_price:g})")])
        return self


class SizingConfig(_Model):
    fixed_qty: Positive | None = None
    """Buy or sell exactly this quantity."""
    fixed_value: Positive | None = None
    """Quantity = this value / the price."""
    pct_allocation: float | None = Field(None, gt=0, le=100)
    """Quantity = this percent of the strategy's allocation / the price."""

    @model_validator(mode="after")
    def _exactly_one(self) -> "SizingConfig":
        if sum(v is not None for v in (self.fixed_qty, self.fixed_value, self.pct_allocation)) != 1:
            raise ValueError("set exactly one of fixed_qty, fixed_value or pct_allocation")
        return self


class ExecutionConfig(_Model):
    """How an entry is worked (DESIGN §3 entry retries)."""

    order_type: Literal["market", "limit"] = "market"
    """market: one market order; limit: a limit at the reference price, re-priced, then market."""
    bias: float = Field(0.0, ge=0, le=0.5)
    """Reference price: 0 is the mid; up to 0.5 concedes toward the touch."""
    max_retries: int = Field(2, ge=0, le=50)
    """How many times an unfilled limit is re-priced toward the touch."""
    retry_delay_s: Seconds = 5.0
    """How long each limit works before it is re-priced."""
    market_fallback: bool = True
    """After the last re-price, send a market order; off: the entry fails with the reason."""


class ExitExecutionConfig(_Model):
    """How an exit is worked. An exit is never abandoned: after the last re-price of a limit
    exit a market order is sent."""

    order_type: Literal["market", "limit"] = "market"
    """market: one market order (a long exits at the bid); limit: a limit at the reference
    price, re-priced toward the touch, then market."""
    bias: float = Field(0.0, ge=0, le=0.5)
    """Reference price of a limit exit: 0 is the mid; up to 0.5 concedes toward the touch."""
    max_retries: int = Field(2, ge=0, le=50)
    """How many times an unfilled limit exit is re-priced before the market order."""
    retry_delay_s: Seconds = 2.0
    """How long each limit exit works before it is re-priced."""


class PnlRules(_Model):
    """P&L protection of one scope (a strategy, or the whole book), in account currency.
    P&L is realized today + unrealized (DESIGN §3)."""

    stop: Positive | None = None
    """Exit every position in scope when P&L <= -stop."""
    target: Positive | None = None
    """Exit every position in scope when P&L >= target."""
    trail_activation: NonNegative = 0.0
    """The P&L that arms the P&L trailing stop (0: armed from the start of the session)."""
    trail_distance: Positive | None = None
    """Once armed, exit everything when P&L falls this much below its peak. Unset: none."""
    daily_loss_limit: Positive | None = None
    """When the day's P&L <= -limit: no new entries until the next session (signals are
    rejected with the reason)."""
    flatten_on_daily_limit: bool = False
    """Also exit every position in scope when the daily loss limit is reached."""

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.stop, self.target, self.trail_distance, self.daily_loss_limit))


class StrategyPnlRules(PnlRules):
    cooldown_s: Seconds | None = None
    """After a P&L stop, target or trailing stop has fired, no new entries for this long
    (unset: until the next session). The rules then measure P&L from that point on."""


class BookConfig(PnlRules):
    """The whole book: its P&L rules (a firing blocks new entries until the next session),
    and when the trading day starts."""

    session_start: TimeOfDay = "00:00"
    """Local time of day at which the trading day (day P&L, daily loss limit) starts."""
    timezone: Annotated[str, BeforeValidator(parse_timezone)] = "UTC"
    """IANA timezone of session_start, e.g. "America/New_York"."""


class DcaLayer(_Model):
    """One layer of a DCA grid (DESIGN §3). Percentages are of the entry price P0."""

    gap_pct: float = Field(ge=0, lt=100)
    """How far from P0 the layer rests: below for a long, above for a short (0: at P0, entered at once)."""
    weight: Positive
    """Its share of the capital: weight / the sum of the weights."""
    tp_pct: float = Field(gt=0, lt=100)
    """Its own take-profit over its fill price (per_leg and hybrid modes)."""


class DcaConfig(_Model):
    """A DCA grid: the position is built in layers of resting limit orders below (long) or
    above (short) the entry price, and taken profit on per layer, on the average, or both."""

    layers: list[DcaLayer] = Field(min_length=1, max_length=50)
    """The layers, nearest first. The first (gap_pct 0) is the entry itself, worked like any
    entry; once it fills the others rest as limit orders, their gaps measured from its fill."""
    tp_mode: Literal["per_leg", "aggregate", "hybrid"] = "per_leg"
    """per_leg: each filled layer closes at its own tp_pct; aggregate: the whole group closes at
    tp_pct over the average entry; hybrid: both armed, the first to trigger wins."""
    tp_pct: float | None = Field(None, gt=0, lt=100)
    """The aggregate take-profit over the average entry (aggregate and hybrid modes)."""
    max_pyramids: int = Field(0, ge=0, le=100)
    """How many further entry signals for an open group each add a new grid to it (no pool slot)."""

    @model_validator(mode="after")
    def _layers_in_order(self) -> "DcaConfig":
        problems = []
        if self.layers[0].gap_pct != 0:
            problems.append((("layers", 0, "gap_pct"), "must be 0: the first layer is the entry itself, at P0"))
        for i in range(1, len(self.layers)):
            if self.layers[i].gap_pct <= self.layers[i - 1].gap_pct:
                problems.append((("layers", i, "gap_pct"), f"must be greater than layers.{i - 1}'s ({self.layers[i].gap_pct:g} "
                                 f"<= {self.layers[i - 1].gap_pct:g}): nearest layer first"))
        _refuse(self, problems)
        return self

    @model_validator(mode="after")
    def _tp_for_mode(self) -> "DcaConfig":
        if self.tp_mode != "per_leg" and self.tp_pct is None:
            _refuse(self, [(("tp_pct",),
                            f'tp_mode = "{self.tp_mode}" needs tp_pct (the take-profit over the average entry)')])
        return self


class RiskEngineConfig(_Model):
    """The loss-offsetting risk engine (DESIGN §3): a stuck loser is closed with part of the
    book's winners closed alongside, so that their realized profit pays for its loss."""

    enabled: bool = True
    """Off: plans are still shown on the Risk screen, nothing runs by itself."""
    loss_threshold_pct: float = Field(gt=0, le=100)
    """A group is a candidate when its unrealized loss is at least this percent of its cost."""
    require_max_pyramids: bool = False
    """Only groups that have used all of their strategy's max_pyramids are candidates."""
    timer_start: Literal["after_5_pyramids", "after_all_dca_submitted", "after_all_dca_filled"] = "after_all_dca_filled"
    """When the post-full timer starts: at the fifth pyramid, once every layer's order is
    placed, or once every layer is filled."""
    timer_s: SecondsOrZero = 0.0
    """How long after the timer starts a group becomes eligible."""
    min_age_s: Seconds | None = None
    """Optional: only groups open at least this long."""
    max_winners_to_combine: int = Field(3, ge=1, le=50)
    """At most this many winners are partly closed to pay for one loser."""


class LogsConfig(_Model):
    """The event history in the database and the log file on disk."""

    retention_days: float = Field(30.0, gt=0, le=36_500)
    """Events older than this are deleted (unacknowledged alerts are kept)."""
    max_rows: int = Field(1_000_000, ge=1000, le=10**9)
    """At most this many events are kept; the oldest go first (unacknowledged alerts are kept)."""
    file: Text = ""
    """The JSON-lines log file; empty: tui_trader.log in the data directory."""
    file_max_mb: float = Field(5.0, gt=0, le=10_000)
    """The log file is rotated when it reaches this size..."""
    file_backups: int = Field(3, ge=0, le=1000)
    """...keeping this many rotated files (tui_trader.log.1 is the newest)."""


class AlertsConfig(_Model):
    """How an alert (an event that needs acknowledging) gets the operator's attention."""

    bell: Literal["off", "critical", "all"] = "critical"
    """Ring the terminal bell for critical alerts, for every alert, or never."""
    on_alert: Text = ""
    """A shell command run for every alert, with the alert as JSON on its stdin."""
    on_alert_timeout_s: float = Field(10.0, gt=0, le=300)
    """The command is killed after this long (and the failure logged)."""


class StrategyConfig(_Model):
    enabled: bool = True
    """A disabled strategy takes no entries."""
    symbols: list[str] = Field(min_length=1)
    """Symbols it trades; each symbol holds at most one position of this strategy."""
    side: Literal["buy", "sell"]
    """buy opens longs, sell opens shorts."""
    entry: Literal["immediate", "manual", "scheduled"] = "immediate"
    """immediate: as soon as a fresh quote exists; scheduled: once in each window of `schedule`;
    manual: only on the operator's command (or a signal)."""
    schedule: ScheduleConfig | None = None
    """Entry windows and the planned exit (required for entry = "scheduled")."""
    basket: bool = False
    """Hold all its symbols as one position, entered leg by leg; if a leg cannot be filled,
    the filled legs are unwound and the run goes to error."""
    reentry: bool = True
    """Enter again after an exit (immediate entry only), once the cooldown has passed."""
    cooldown_s: SecondsOrZero = 0.0
    """Seconds after an exit before a re-entry is considered."""
    sizing: SizingConfig
    """How big each position is."""
    allocation: Positive | None = None
    """Funds allocated to this strategy: its open positions' value may not exceed it."""
    execution: ExecutionConfig = ExecutionConfig()
    """How entries are worked: market, or limit with re-prices and a market fallback."""
    stop_loss: DistanceValue | None = None
    """Stop distance from the entry price: "1%" or points."""
    target: DistanceValue | None = None
    """Target distance from the entry price: "2%" or points."""
    trail_activation: DistanceValue = Distance(0.0, "points")
    """Profit over the entry price that arms the trailing stop; 0 arms it at entry."""
    trail_distance: DistanceValue | None = None
    """Trailing distance from the peak: "0.5%" of the peak or points. Unset: no trailing stop."""
    time_exit_s: Seconds | None = None
    """Exit this many seconds after entry."""
    trigger_price: Literal["mark", "bid_ask", "last"] = "mark"
    """Price the exit rules compare: the mark (mid), the exit side's touch, or the last trade."""
    exit_execution: ExitExecutionConfig = ExitExecutionConfig()
    """How exits are worked: market (the default), or limit with re-prices then market."""
    pnl: StrategyPnlRules | None = None
    """P&L stop / target / trailing and a daily loss limit over all of this strategy's positions."""
    dca: DcaConfig | None = None
    """Build each position as a DCA grid of layers (sizing gives the capital split over them)."""

    @model_validator(mode="after")
    def _dca_capital(self) -> "StrategyConfig":
        if self.dca is not None:
            problems = []
            if self.sizing.fixed_qty is not None:
                problems.append((("sizing", "fixed_qty"), "dca needs sizing.fixed_value or sizing.pct_allocation "
                                                          "(the capital split over its layers)"))
            if self.basket:
                problems.append((("basket",), "dca and basket cannot be combined (a grid is built on one symbol)"))
            if self.target is not None:
                problems.append((("target",), "a DCA strategy takes profit with dca.tp_mode and the layers' tp_pct; "
                                              "remove target"))
            _refuse(self, problems)
        return self

    @model_validator(mode="after")
    def _schedule_for_scheduled(self) -> "StrategyConfig":
        if self.entry == "scheduled" and self.schedule is None:
            _refuse(self, [(("schedule",), 'entry = "scheduled" needs a schedule table (entry_times or every_minutes, '
                                           'timezone)')])
        return self

    @model_validator(mode="after")
    def _allocation_for_pct(self) -> "StrategyConfig":
        if self.sizing.pct_allocation is not None and self.allocation is None:
            _refuse(self, [(("allocation",), "sizing.pct_allocation needs allocation (the funds it is a percent of)")])
        return self

    @model_validator(mode="after")
    def _positive_levels(self) -> "StrategyConfig":
        # The trailing distance is checked as an edit checks it; trail_activation needs only
        # parse_distance's bounds.
        problems = []
        for name in ("stop_loss", "target"):
            level = getattr(self, name)
            if level is not None and level.value <= 0:
                problems.append(((name,), "must be greater than 0 (leave it out for none)"))
        trail = None if self.trail_distance is None else trail_distance_problem(self.trail_distance)
        if trail is not None:
            problems.append((("trail_distance",), f"{trail} (leave it out for none)"))
        if self.stop_loss is not None and self.stop_loss.unit == "pct" and self.stop_loss.value >= 1 and self.side == "buy":
            problems.append((("stop_loss",), 'must be below 100% for a long (side = "buy")'))
        _refuse(self, problems)
        return self


class TradingConfig(_Model):
    """Everything the engine needs, independent of where it was loaded from."""

    engine: EngineConfig = EngineConfig()
    store: StoreConfig = StoreConfig()
    feed: FeedConfig = FeedConfig()
    paper: PaperConfig = PaperConfig()
    book: BookConfig = BookConfig()
    symbols: dict[str, SymbolConfig] = Field(min_length=1)
    strategies: dict[str, StrategyConfig] = {}
    risk_engine: RiskEngineConfig | None = None
    """The loss-offsetting risk engine; absent: off."""
    logs: LogsConfig = LogsConfig()
    alerts: AlertsConfig = AlertsConfig()

    @model_validator(mode="after")
    def _known_symbols(self) -> "TradingConfig":
        _refuse(self, [
            (("strategies", sid, "symbols", i), f"unknown symbol {sym!r} (declare it under [symbols.{sym}])")
            for sid, strat in self.strategies.items()
            for i, sym in enumerate(strat.symbols)
            if sym not in self.symbols
        ])
        return self

    @model_validator(mode="after")
    def _dca_layers_tradable(self) -> "TradingConfig":
        """Each layer of a grid must be an order the venue accepts: checked at the symbol's
        start price, with its tick, lot step and minimum notional."""
        problems = []
        for sid, strat in self.strategies.items():
            if strat.dca is None:
                continue
            capital = strat.sizing.fixed_value or (strat.allocation or 0.0) * (strat.sizing.pct_allocation or 0.0) / 100.0
            for sym in strat.symbols:
                sc = self.symbols.get(sym)
                if sc is not None:
                    problems += [(("strategies", sid, "dca", "layers", i, "weight"), why) for i, why in grid_problems(
                        strat.dca.layers, strat.side, sc.start_price, capital, sc.tick_size, sc.lot_step,
                        sc.min_notional, sym)]
        _refuse(self, problems)
        return self
