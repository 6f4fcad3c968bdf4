"""The composition root: the adapters an engine runs on (its feed, execution client and
instrument rules) are chosen and built here, never inside the engine. Today: the simulated
market and the paper execution client, its events delivered at once or, with
paper.events = "async", after the engine call that caused them (and paper.latency_ms)."""

from __future__ import annotations

from typing import Callable

from services.adapters.paper.execution import PaperExecution, Schedule
from services.config import PaperConfig, TradingConfig
from services.engine import Engine
from services.adapters.simulated.feed import SimulatedFeed
from services.market import QuoteBook
from services.ports import Clock, ExecutionClient, Feed, InstrumentProvider, Store
from services.rules.precision import SettingsRules

ClientFactory = Callable[[PaperConfig, QuoteBook, Clock, InstrumentProvider, "Schedule | None"], ExecutionClient]
"""How a client is built (PaperExecution's own signature: a test may hand in a variant)."""


def events_mode(config: TradingConfig) -> str:
    """How the paper client answers: "immediate" or "async" (a test run may choose for all)."""
    return config.paper.events


def build_engine(config: TradingConfig, clock: Clock, store: Store, *, feed: Feed | None = None,
                 client: ClientFactory | None = None, rules: InstrumentProvider | None = None) -> Engine:
    book = QuoteBook(config.feed.max_quote_age_s)
    rules = rules if rules is not None else SettingsRules(config.symbols)
    feed = feed if feed is not None else SimulatedFeed(config.symbols, clock, config.feed.seed)
    built: list[Engine] = []
    schedule = (lambda delay, deliver: built[0].later(delay, deliver)) if events_mode(config) == "async" else None
    make = client if client is not None else PaperExecution
    engine = Engine(config, clock, store, feed=feed, client=make(config.paper, book, clock, rules, schedule),
                    book=book, rules=rules)
    built.append(engine)
    return engine
