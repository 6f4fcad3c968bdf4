"""The built-in simulated market: a geometric random walk per symbol. It continues from the
last stored prices at a restart (DESIGN §4); its path is new at every run unless seeded.
It can quote only the symbols it was given (their settings hold the start price, drift,
volatility and tick); it starts with all of them subscribed."""

from __future__ import annotations

import asyncio
import logging
import math
import random
from typing import Callable, Iterable

from ...config import SymbolConfig
from ...market import Quote
from ...ports import Clock, FeedHealth, QuoteHandler

SECONDS_PER_YEAR = 365.0 * 24 * 3600

log = logging.getLogger("tui_trader.feed")


class SimulatedFeed:
    def __init__(self, symbols: dict[str, SymbolConfig], clock: Clock, seed: int | None = None) -> None:
        self.clock = clock
        self.config = dict(symbols)
        self.symbols = tuple(symbols)
        self.health = FeedHealth(name="simulated")
        if seed is None:
            seed = random.SystemRandom().randrange(2**63)
        # One generator per symbol, so adding a symbol does not change the others' paths.
        self._rng = {sym: random.Random(f"{seed}:{sym}") for sym in symbols}
        self._price = {sym: cfg.start_price for sym, cfg in symbols.items()}
        self._next_due: dict[str, float] = {}
        self._on_quote: QuoteHandler | None = None
        self._task: asyncio.Task | None = None
        self.on_error: Callable[[str, Exception], None] | None = None
        """Told (symbol, exception) when delivering a quote raised; the feed goes on either way."""

    def continue_from(self, prices: dict[str, float]) -> None:
        """Go on from these prices (the last stored marks), not from the configured start:
        a position restored at a restart is marked where the market was left."""
        for sym, price in prices.items():
            if sym in self._price and math.isfinite(price) and price > 0:
                self._price[sym] = price

    def subscribe(self, symbols: Iterable[str]) -> None:
        """Quote these symbols too, from the next step on, each going on from its last price.
        Raises ValueError for a symbol the feed has no settings for."""
        wanted = tuple(dict.fromkeys(symbols))
        unknown = [sym for sym in wanted if sym not in self.config]
        if unknown:
            raise ValueError(f"the simulated feed has no settings for {', '.join(unknown)}")
        self.symbols += tuple(sym for sym in wanted if sym not in self.symbols)

    def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone = set(symbols)
        self.symbols = tuple(sym for sym in self.symbols if sym not in gone)
        for sym in gone:
            self._next_due.pop(sym, None)  # due at once if subscribed again

    def next_quote(self, symbol: str) -> Quote:
        """Advance one symbol's price by one tick and return its quote."""
        cfg = self.config[symbol]
        dt = cfg.tick_interval_s / SECONDS_PER_YEAR
        z = self._rng[symbol].gauss(0.0, 1.0)
        price = self._price[symbol] * math.exp(
            (cfg.drift - 0.5 * cfg.volatility**2) * dt + cfg.volatility * math.sqrt(dt) * z
        )
        self._price[symbol] = price
        half = price * cfg.spread_bps / 20_000.0
        q = Quote(symbol, self.clock.now(), round(price - half, 8), round(price + half, 8), round(price, 8))
        self.health.last_event_at = q.ts
        return q

    def step(self) -> list[Quote]:
        """Emit the quotes that are due at the clock's time (all of them on the first call)."""
        now = self.clock.now()
        out = []
        for sym in self.symbols:
            if self._next_due.get(sym, now) <= now:
                q = self.next_quote(sym)
                self._next_due[sym] = now + self.config[sym].tick_interval_s
                out.append(q)
                if self._on_quote is not None:
                    try:
                        self._on_quote(q)
                    except Exception as exc:  # one failed delivery must not end the market data for good
                        self._delivery_failed(sym, exc)
        return out

    def _delivery_failed(self, symbol: str, exc: Exception) -> None:
        try:
            if self.on_error is not None:
                self.on_error(symbol, exc)
                return
        except Exception:
            log.exception("reporting a failed %s quote failed", symbol)
        log.error("handling a %s quote failed", symbol, exc_info=exc)

    async def start(self, on_quote: QuoteHandler) -> None:
        self._on_quote = on_quote
        self.health.connected = True
        self._task = asyncio.get_running_loop().create_task(self._run(), name="simulated-feed")

    async def _run(self) -> None:
        while True:
            self.step()
            now = self.clock.now()
            wake = min(self._next_due.values(), default=now + 1.0)
            await self.clock.sleep(max(wake - now, 0.001))

    async def stop(self) -> None:
        self.health.connected = False
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._on_quote = None
