"""The Positions screen over a real engine on a fake clock with scripted prices: sorting,
filtering, multi-selection and bulk exit, exiting a strategy, exiting everything behind a
typed word, baskets that open into their legs, DCA grids that open into their layers, the
health detail, the book's P&L and a mark sparkline per position.

The book: trend is long BTCUSDT and loses, fade is short ETHUSDT with an armed trailing stop
and wins, pair is a basket long BTCUSDT + ETHUSDT and loses, acme is long ACME whose quotes
stop after the entry (STALE). Snapshots are taken only when the test renders (publish_hz is
tiny), once per second of the fake clock, so the marks behind the sparklines are the same on
every run."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Static

from screens.format import sparkline
from screens.positions import PositionsScreen, parse_filter
from screens.widgets import ConfirmScreen, EditLevelsScreen, LiveStatic
from services.clock import FakeClock
from services.config import TradingConfig
from services.engine import Engine
from tui_trader.wiring import build_engine
from services.store import SqlStore
from tests.conftest import T0, config
from tests.test_dca import LAYERS
from tests.test_tui import SIZE, column, text_of
from tests.test_tui_entry import ScriptedFeed
from tests.test_tui_orphans import AFTER, leave_positions
from tui_trader.app import TraderApp, make_app

STRATEGIES = {
    "trend": {"symbols": ["BTCUSDT"], "side": "buy", "sizing": {"fixed_qty": 1}, "stop_loss": "1%", "target": "2%"},
    "fade": {"symbols": ["ETHUSDT"], "side": "sell", "sizing": {"fixed_qty": 10}, "stop_loss": "2%",
             "trail_distance": "0.5%"},
    "pair": {"symbols": ["BTCUSDT", "ETHUSDT"], "side": "buy", "basket": True, "sizing": {"fixed_qty": 1},
             "stop_loss": "3%"},
    "acme": {"symbols": ["ACME"], "side": "buy", "sizing": {"fixed_qty": 10}, "target": "5%"},
}

# Mids, one per second after the entries (the spread is 0.02 around each).
BTC = [100.2, 99.9, 99.7, 99.8, 99.6, 99.5]
ETH = [49.95, 49.9, 49.85, 49.9, 49.8, 49.82]


def positions_config(**changes: dict) -> TradingConfig:
    """The book above; `changes` add settings to a strategy (trend={...})."""
    strategies = {sid: {**cfg, **changes.get(sid, {})} for sid, cfg in STRATEGIES.items()}
    return TradingConfig.model_validate({
        "engine": {"max_open_positions": 10, "publish_hz": 0.01},  # snapshots only when the test renders
        "paper": {"slippage_bps": 0, "maker_fee_bps": 0, "taker_fee_bps": 5},
        "symbols": {
            "BTCUSDT": {"start_price": 100.0, "tick_interval_s": 1, "tick_size": 0.01},
            "ETHUSDT": {"start_price": 50.0, "tick_interval_s": 1, "tick_size": 0.01},
            "ACME": {"start_price": 20.0, "tick_interval_s": 600, "tick_size": 0.01},  # quoted once: STALE soon
        },
        "strategies": strategies,
    })


def book(btc: float, eth: float) -> dict[str, tuple[float, float]]:
    return {"BTCUSDT": (btc - 0.01, btc + 0.01), "ETHUSDT": (eth - 0.01, eth + 0.01), "ACME": (19.99, 20.01)}


def make_engine(tmp_path: Path, clock: FakeClock, cfg: TradingConfig | None = None) -> Engine:
    cfg = cfg or positions_config()
    feed = ScriptedFeed(cfg, clock)
    feed.book = book(100.0, 50.0)
    return build_engine(cfg, clock, SqlStore(f"sqlite:///{tmp_path}/t.db"), feed=feed)


@pytest.fixture
def engine(tmp_path: Path, clock: FakeClock) -> Engine:
    return make_engine(tmp_path, clock)


@pytest.fixture
def app(engine: Engine) -> TraderApp:
    return make_app(None, engine)


async def second(pilot: Pilot) -> None:
    """One second of the fake clock: the feed quotes, then a snapshot is taken and rendered."""
    pilot.app.engine.clock.advance(1)
    await pilot.pause()
    pilot.app.render_now()
    await pilot.pause()


async def trade(pilot: Pilot) -> None:
    """Enter everything, walk the prices, open the Positions screen."""
    await pilot.pause()
    pilot.app.render_now()
    feed = pilot.app.engine.feed
    for btc, eth in zip(BTC, ETH):
        feed.book = book(btc, eth)
        await second(pilot)
    await pilot.press("3")
    await pilot.pause()


def group_ids(engine: Engine) -> dict[str, int]:
    return {g.strategy_id: g.id for g in engine.groups.values()}


def open_strategies(engine: Engine) -> set[str]:
    return {g.strategy_id for g in engine.groups.values() if g.status == "open" and not g.pending_exit}


def table(app: TraderApp) -> DataTable:
    return app.screen.query_one("#positions", DataTable)


def view_text(app: TraderApp) -> str:
    return text_of(app.screen.query_one("#view", LiveStatic)).strip()


def detail_text(app: TraderApp) -> str:
    return " ".join(text_of(app.screen.query_one("#detail", LiveStatic)).split())


async def highlight(pilot: Pilot, strategy: str) -> None:
    """Put the cursor on the row of the strategy's group."""
    t = table(pilot.app)
    t.move_cursor(row=column(t, "Strategy").index(strategy))
    await pilot.pause()


async def type_text(pilot: Pilot, text: str) -> None:
    await pilot.press(*[{"<": "less_than_sign", ">": "greater_than_sign", " ": "space"}.get(c, c) for c in text])


# == the table ===============================================================================


async def test_one_row_per_group_with_health_columns(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await trade(pilot)
        t = table(app)
        ids = group_ids(engine)
        assert column(t, "#") == [str(i) for i in sorted(ids.values())]
        rows = dict(zip(column(t, "Strategy"), range(len(ids))))
        assert column(t, "Symbol")[rows["pair"]] == "▸ 2 legs"
        assert column(t, "Status")[rows["acme"]] == "STALE"
        assert column(t, "Next exit")[rows["fade"]].startswith("trail ")
        assert column(t, "Age")[rows["trend"]] == f"{len(BTC)}s"
        snap = engine.snapshot()
        pair = [p for p in snap.positions if p.strategy_id == "pair"]
        assert column(t, "P&L")[rows["pair"]] == f"{sum(p.pnl for p in pair):+,.2f}"
        assert column(t, "P&L")[rows["fade"]].startswith("+") and column(t, "P&L")[rows["trend"]].startswith("-")
        trend = next(p for p in snap.positions if p.strategy_id == "trend")
        assert len(trend.marks) >= len(BTC)
        assert column(t, "Trend")[rows["trend"]] == sparkline(trend.marks, 8)


async def test_o_cycles_the_sort_r_reverses_it_and_the_cursor_stays_on_its_position(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await trade(pilot)
        t = table(app)
        by_id = column(t, "Strategy")
        await highlight(pilot, "fade")
        assert view_text(app).startswith("sort # ↑")
        await pilot.press("o")
        assert column(t, "Strategy") == ["acme", "fade", "pair", "trend"]
        assert view_text(app).startswith("sort strategy ↑")
        await pilot.press("o")
        assert view_text(app).startswith("sort symbol ↑")
        assert column(t, "Strategy")[0] == "acme"  # ACME before BTCUSDT and ETHUSDT
        await pilot.press("o")
        assert view_text(app).startswith("sort P&L ↑")
        pnls = [float(v.replace(",", "")) for v in column(t, "P&L")]
        assert pnls == sorted(pnls) and column(t, "Strategy")[-1] == "fade"  # the only winner last
        await pilot.press("r")
        assert view_text(app).startswith("sort P&L ↓")
        assert column(t, "Strategy")[0] == "fade"
        assert app.screen.selected.strategy_id == "fade"  # the cursor followed its row
        await pilot.press("o", "o")
        assert view_text(app).startswith("sort age ↓")
        await pilot.press("o", "r")
        assert view_text(app).startswith("sort # ↑")
        assert column(t, "Strategy") == by_id


async def test_slash_filters_by_text_and_pnl_and_escape_clears(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await trade(pilot)
        t = table(app)
        await pilot.press("slash")
        box = app.screen.query_one("#filter", Input)
        bar = app.screen.query_one("#filter-bar")
        assert bar.display and box.has_focus
        await type_text(pilot, "eth")
        assert sorted(column(t, "Strategy")) == ["fade", "pair"]  # pair holds ETHUSDT too
        assert "filter 'eth': 2 of 4 shown" in view_text(app)
        box.value = ""
        await type_text(pilot, "short")
        assert column(t, "Strategy") == ["fade"]
        box.value = ""
        await type_text(pilot, "pnl>0")
        assert column(t, "Strategy") == ["fade"]
        box.value = ""
        await type_text(pilot, "pnl<0 btc")
        assert sorted(column(t, "Strategy")) == ["pair", "trend"]
        await pilot.press("enter")  # keeps the filter, back to the table
        assert not bar.display and t.has_focus
        assert sorted(column(t, "Strategy")) == ["pair", "trend"]
        await pilot.press("x")  # keys work on the filtered table
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.press("escape")
        assert len(column(t, "Strategy")) == 4
        assert "filter '" not in view_text(app)

        await pilot.press("slash")
        await type_text(pilot, "pnl<x")
        assert "write pnl< or pnl> with a number" in view_text(app)
        assert len(column(t, "Strategy")) == 4  # a filter it cannot read hides nothing
        await pilot.press("escape")
        assert not bar.display and box.value == ""


def test_parse_filter_words_must_all_match():
    assert len(parse_filter("eth  pnl<0")) == 2
    assert parse_filter("") == []
    with pytest.raises(ValueError, match="pnl<"):
        parse_filter("pnl<abc")


async def test_space_selects_groups_and_x_exits_exactly_those_after_one_confirmation(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await trade(pilot)
        ids = group_ids(engine)
        t = table(app)
        await highlight(pilot, "trend")
        await pilot.press("space")
        await highlight(pilot, "acme")
        await pilot.press("space")
        await highlight(pilot, "fade")
        await pilot.press("space", "space")  # toggled twice: not selected
        marks = dict(zip(column(t, "Strategy"), column(t, " ")))
        assert marks == {"trend": "●", "fade": "", "pair": "", "acme": "●"}
        assert f"2 selected: #{ids['trend']} #{ids['acme']}" in view_text(app)

        await pilot.press("x")  # the highlighted fade is not what x exits now
        assert isinstance(app.screen, ConfirmScreen)
        question = " ".join(text_of(app.screen.query_one("#question", Static)).split())
        assert f"Exit 2 positions at market: #{ids['trend']} BTCUSDT, #{ids['acme']} ACME?" in question
        await pilot.press("n")
        assert open_strategies(engine) == {"trend", "fade", "pair", "acme"}
        await pilot.press("x", "y")
        await pilot.pause()
        assert open_strategies(engine) == {"fade", "pair"}
        assert engine.groups[ids["acme"]].pending_exit == "manual"  # stale: sent on its next quote
        assert "selected" not in view_text(app)  # exited groups leave the selection
        await highlight(pilot, "acme")
        assert "EXITING (manual): exit order to be sent" in detail_text(app)
        await pilot.press("space")  # an exiting position cannot be selected again
        assert app.screen.selection == set()
        assert any("already exiting" in n.message for n in app._notifications)


async def test_a_selected_group_that_closes_leaves_the_selection(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await trade(pilot)
        await highlight(pilot, "trend")
        await pilot.press("space")
        assert app.screen.selection == {group_ids(engine)["trend"]}
        assert engine.exit_position(group_ids(engine)["trend"]).ok
        await second(pilot)
        assert app.screen.selection == set()
        await highlight(pilot, "fade")
        await pilot.press("x")  # nothing selected: the highlighted position
        question = text_of(app.screen.query_one("#question", Static))
        assert f"Exit #{group_ids(engine)['fade']} short 10 ETHUSDT" in question


async def test_S_exits_the_highlighted_positions_strategy_after_confirmation(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await trade(pilot)
        await highlight(pilot, "pair")
        await pilot.press("S")
        assert isinstance(app.screen, ConfirmScreen)
        question = " ".join(text_of(app.screen.query_one("#question", Static)).split())
        pair = group_ids(engine)["pair"]
        assert f"Exit the 1 open position(s) of pair at market: #{pair} BTCUSDT+ETHUSDT?" in question
        await pilot.press("escape")
        assert "pair" in open_strategies(engine)
        await pilot.press("S", "y")
        await pilot.pause()
        assert open_strategies(engine) == {"trend", "fade", "acme"}
        assert "pair" not in column(table(app), "Strategy")


async def test_S_exits_a_strategy_that_is_no_longer_in_the_settings(tmp_path):
    db = f"sqlite:///{tmp_path}/t.db"
    leave_positions(db)  # "gone" holds BTCUSDT, then is removed from the settings
    engine = build_engine(config(**AFTER), FakeClock(T0 + 10), SqlStore(db))
    app = make_app(None, engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("escape", "escape")  # the questions at start (gone, then off): decide later
        await pilot.press("3")
        app.render_now()
        await pilot.pause()
        await highlight(pilot, "gone")
        assert detail_text(app).startswith("gone is removed from the settings (S exits its positions) · #1 gone long 1")
        await pilot.press("S")
        assert "Exit the 1 open position(s) of gone" in text_of(app.screen.query_one("#question", Static))
        await pilot.press("y")
        await pilot.pause()
        assert [g.pending_exit for g in engine.groups.values() if g.strategy_id == "gone"] in ([], ["manual"])
        assert any(g.strategy_id == "off" and not g.pending_exit for g in engine.groups.values())


async def test_X_exits_everything_only_once_the_word_is_typed(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await trade(pilot)
        await pilot.press("X")
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        assert "Exit ALL 4 open position(s)" in text_of(confirm.query_one("#question", Static))
        assert "Type EXIT" in text_of(confirm.query_one("#question", Static))
        yes = confirm.query_one("#yes", Button)
        assert yes.disabled
        await pilot.press("y")  # y types; it does not confirm
        await pilot.press("enter")
        assert app.screen is confirm and open_strategies(engine) == {"trend", "fade", "pair", "acme"}
        assert any("Type EXIT exactly" in n.message for n in app._notifications)
        confirm.query_one("#word", Input).value = ""
        await type_text(pilot, "EXIT")
        assert not yes.disabled
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PositionsScreen)
        assert open_strategies(engine) == set()


async def test_X_cancelled_with_escape_exits_nothing(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await trade(pilot)
        await pilot.press("X")
        await type_text(pilot, "EXIT")
        await pilot.press("escape")
        assert isinstance(app.screen, PositionsScreen)
        assert open_strategies(engine) == {"trend", "fade", "pair", "acme"}


async def test_enter_opens_a_basket_into_its_legs_and_closes_it(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await trade(pilot)
        t = table(app)
        await highlight(pilot, "trend")
        await pilot.press("enter")  # a single position has no legs to show
        assert len(column(t, "Strategy")) == 4
        await highlight(pilot, "pair")
        assert "basket: long 1 BTCUSDT" in detail_text(app) and "enter shows the legs" in detail_text(app)
        await pilot.press("enter")
        symbols = column(t, "Symbol")
        at = column(t, "Strategy").index("pair")
        assert symbols[at:at + 3] == ["▾ 2 legs", "└ BTCUSDT", "└ ETHUSDT"]
        assert column(t, "Mark")[at + 2] == "49.82"
        await pilot.press("down", "down")  # the ETHUSDT leg: its own health
        pair = group_ids(engine)["pair"]
        assert detail_text(app).startswith(f"#{pair} pair long 1 ETHUSDT · entry 50.01 → mark 49.82")
        await pilot.press("enter")  # on a leg: the basket closes, the cursor on its row
        assert len(column(t, "Strategy")) == 4
        assert column(t, "Symbol")[t.cursor_row] == "▸ 2 legs"


async def test_e_on_a_basket_edits_the_leg_it_is_on(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await trade(pilot)
        await highlight(pilot, "pair")
        await pilot.press("e")  # the basket's own row: which leg?
        assert not isinstance(app.screen, EditLevelsScreen)
        assert any("open it (enter)" in n.message for n in app._notifications)
        await pilot.press("enter", "down", "down", "e")  # the ETHUSDT leg
        form = app.screen
        assert isinstance(form, EditLevelsScreen) and form.position.symbol == "ETHUSDT"
        eth = next(leg for leg in engine.groups[group_ids(engine)["pair"]].legs if leg.symbol == "ETHUSDT")
        form.query_one("#stop-input", Input).value = f"{eth.mark - 1:.2f}"
        await pilot.press("enter")
        await pilot.pause()
        assert eth.stop == round(eth.mark - 1, 2)


async def test_the_detail_tells_the_highlighted_positions_health(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await trade(pilot)
        await highlight(pilot, "fade")
        detail = detail_text(app)
        fade = next(p for p in engine.snapshot().positions if p.strategy_id == "fade")
        assert detail.startswith(f"#{fade.group_id} fade short 10 ETHUSDT · entry 49.99 → mark 49.82 ")
        assert f"P&L {fade.pnl:+,.2f} ({fade.pnl_pct:+.2f}%), fees {fade.fees:,.2f} · age 6s · OPEN" in detail
        # the trough 49.80 (at 00:00:05) moved the level to 49.80 * 1.005
        assert "trail 0.5% armed: level 50.05, 0.23 (0.46%) away, trough 49.80, last move 00:00:05" in detail
        assert "stop 50.99, 1.17 (2.35%) away" in detail
        assert "no target" in detail
        await highlight(pilot, "acme")
        assert "STALE: no fresh quote" in detail_text(app)
        summary = text_of(app.screen.query_one("#book", LiveStatic))
        book_view = engine.snapshot().portfolio[0]
        assert summary.startswith("Account: equity ")
        assert summary.splitlines()[1].startswith(f"Book today: realized +0.00 · unrealized {book_view.unrealized:+,.2f}")
        assert "│ trend -" in summary and "fade +" in summary


async def test_an_exiting_position_shows_its_working_exit_order(tmp_path, clock):
    limit_exit = {"exit_execution": {"order_type": "limit", "max_retries": 1, "retry_delay_s": 5}}
    engine = make_engine(tmp_path, clock, positions_config(trend=limit_exit))
    app = make_app(None, engine)
    async with app.run_test(size=SIZE) as pilot:
        await trade(pilot)
        assert engine.exit_position(group_ids(engine)["trend"]).ok
        await second(pilot)  # the limit at the mid 99.50 rests
        await highlight(pilot, "trend")
        t = table(app)
        assert column(t, "Status")[t.cursor_row] == "EXITING"
        assert "EXITING (manual): exit order limit 99.50" in detail_text(app)


async def test_the_detail_tells_how_far_a_trailing_stop_is_from_arming(tmp_path, clock):
    trail = {"trail_distance": "0.5%", "trail_activation": "1%"}
    app = make_app(None, make_engine(tmp_path, clock, positions_config(trend=trail)))
    async with app.run_test(size=SIZE) as pilot:
        await trade(pilot)
        await highlight(pilot, "trend")
        # long from 100.01: arms when the mark reaches 101.01; the mark is 99.50
        assert "trail 0.5% not armed: arms at 101.01, 1.51 (1.52%) away" in detail_text(app)
        t = table(app)
        assert column(t, "Trail")[t.cursor_row] == "idle"


def test_sparkline_scales_between_the_lowest_and_highest_and_thins_long_histories():
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8], 8) == "▁▂▃▄▅▆▇█"
    assert sparkline(list(range(100)), 8) == "▁▂▃▄▅▆▇█"
    assert sparkline([3, 1, 2], 8) == "█▁▅"
    assert sparkline([5.0, 5.0], 8) == "▄▄"
    assert sparkline([], 8) == ""


# == DCA grids ==============================================================================
# A long grid on BTCUSDT worth 400: layer 1 buys 1 at the entry (100.00), layer 2 rests 1.02 at
# 98.00, layer 3 rests 2.105 at 95.00; each layer's own TP is 1%, 1.5%, 2% over its fill.


def grid_config(tp_mode: str = "hybrid", tp_pct: float | None = 1.5, max_pyramids: int = 0) -> TradingConfig:
    dca = {"layers": LAYERS, "tp_mode": tp_mode, "max_pyramids": max_pyramids}
    if tp_pct is not None:
        dca["tp_pct"] = tp_pct
    return TradingConfig.model_validate({
        "engine": {"max_open_positions": 10, "publish_hz": 0.01},
        "paper": {"slippage_bps": 0, "maker_fee_bps": 0, "taker_fee_bps": 0},
        "symbols": {"BTCUSDT": {"start_price": 100.0, "tick_interval_s": 1, "tick_size": 0.01, "lot_step": 0.001}},
        "strategies": {"grid": {"symbols": ["BTCUSDT"], "side": "buy", "entry": "manual",
                                "sizing": {"fixed_value": 400}, "dca": dca}},
    })


async def quote(pilot: Pilot, bid: float, ask: float | None = None) -> None:
    """The next second's BTCUSDT quote (a zero spread unless `ask` is given), rendered."""
    pilot.app.engine.feed.book = {"BTCUSDT": (bid, bid if ask is None else ask)}
    await second(pilot)


async def grid_entered(pilot: Pilot) -> int:
    """Enter the grid at 100.00 and fill its second layer (the ask reaches 98.00: the mark is
    97.85); the Positions screen shows it. Returns the group id."""
    engine = pilot.app.engine
    await quote(pilot, 100.0)
    result = engine.enter_now("grid", "BTCUSDT")
    assert result.ok, result.message
    await quote(pilot, 97.8, 97.9)
    await pilot.press("3")
    await pilot.pause()
    return next(iter(engine.groups))


def grid_app(tmp_path: Path, clock: FakeClock, **config) -> TraderApp:
    return make_app(None, make_engine(tmp_path, clock, grid_config(**config)))


def row_of(app: TraderApp, symbol: str) -> dict[str, str]:
    """The cells of the row whose Symbol cell is `symbol`, by column name."""
    t = table(app)
    at = column(t, "Symbol").index(symbol)
    return {name: column(t, name)[at] for name in (c.label.plain for c in t.ordered_columns)}


async def highlight_symbol(pilot: Pilot, symbol: str) -> None:
    t = table(pilot.app)
    t.move_cursor(row=column(t, "Symbol").index(symbol))
    await pilot.pause()


async def test_a_grid_is_one_row_with_its_average_entry_and_aggregate_tp(tmp_path, clock):
    app = grid_app(tmp_path, clock)
    async with app.run_test(size=SIZE) as pilot:
        gid = await grid_entered(pilot)
        (view,) = app.engine.snapshot().grids
        assert (round(view.avg_entry, 2), view.agg_tp) == (98.99, 100.48)  # (100 x 1 + 98 x 1.02) / 2.02, +1.5%
        row = row_of(app, "▸ BTCUSDT ▦2/3")  # 2 of 3 layers filled
        assert (row["#"], row["Status"], row["Qty"], row["Entry"], row["Target"]) == (str(gid), "OPEN", "2.02", "98.99",
                                                                                       "100.48")
        assert row["Mark"] == "97.85" and row["Next exit"] == "target 1.66%"  # layer 2's own 99.47 comes first
        assert row["P&L"] == f"{(97.85 - 100) * 1 + (97.85 - 98) * 1.02:+.2f}"
        await highlight(pilot, "grid")
        detail = detail_text(app)
        assert detail.startswith(f"#{gid} grid long 2.02 BTCUSDT · DCA grid, TP hybrid · avg entry 98.99 → mark 97.85")
        assert "aggregate TP 100.48, 2.63 (2.69%) away · pyramids 0 of 0 · layers filled 2 of 3, 1 resting" in detail
        assert "realized +0.00" in detail and detail.endswith("enter shows the layers")


async def test_enter_opens_a_grid_into_its_layers_and_a_per_layer_tp_shows_as_tp_hit(tmp_path, clock):
    app = grid_app(tmp_path, clock)
    async with app.run_test(size=SIZE) as pilot:
        gid = await grid_entered(pilot)
        await highlight(pilot, "grid")
        await pilot.press("enter")
        t = table(app)
        assert column(t, "Symbol") == ["▾ BTCUSDT ▦2/3", "└ P0 L1 ×1 @100.00", "└ P0 L2 ×1 @98.00", "└ P0 L3 ×2 @95.00"]
        assert column(t, "Status")[1:] == ["filled", "filled", "pending"]
        assert column(t, "Entry")[1:] == ["100.00", "98.00", "95.00"]
        assert column(t, "Target")[1:] == ["101.00", "99.47", "—"]
        assert column(t, "Qty")[1:] == ["1/1", "1.02/1.02", "0/2.105"]
        legs = sorted(app.engine.groups[gid].legs, key=lambda lg: lg.layer)
        assert column(t, "P&L")[1:] == ["-2.15", "-0.15", ""]  # filled layers: live P&L
        assert column(t, "Mark")[1:] == ["97.85", "97.85", ""]

        await quote(pilot, 99.5)  # layer 2's own TP (99.47) takes its profit
        assert column(t, "Status")[1:] == ["filled", "tp-hit", "pending"]
        assert column(t, "P&L")[2] == "+1.53"  # realized: (99.50 - 98.00) x 1.02
        assert row_of(app, "▾ BTCUSDT ▦2/3")["Target"] == "101.50"  # the aggregate now over layer 1 alone
        assert "layers filled 2 of 3, 1 resting, 1 took profit" in detail_text(app)
        await pilot.press("down")
        layer1 = detail_text(app)
        assert layer1.startswith(f"#{gid} grid BTCUSDT layer P0 L1 (leg {legs[0].id}): filled · weight 1 of 4 · "
                                 "long 1 at 100.00 → mark 99.50")
        assert "target 101.00, 1.50 (1.51%) away" in layer1
        assert "the grid's aggregate TP 101.50 closes it too" in layer1
        await pilot.press("down")
        assert detail_text(app) == (f"#{gid} grid BTCUSDT layer P0 L2 (leg {legs[1].id}): tp-hit · weight 1 of 4 · "
                                    "filled 1.02 at 98.00, took profit at its TP 99.47 · realized +1.53")
        await pilot.press("down")
        assert detail_text(app) == (f"#{gid} grid BTCUSDT layer P0 L3 (leg {legs[2].id}): pending · weight 2 of 4 · "
                                    "resting limit buy 2.105 at 95.00, 4.50 (4.52%) away · its own TP is set from its fill")
        await pilot.press("enter")  # on a layer: the grid closes, the cursor on its row
        assert column(t, "Symbol") == ["▸ BTCUSDT ▦2/3"] and t.cursor_row == 0


async def test_e_edits_a_filled_layer_and_refuses_a_resting_one(tmp_path, clock):
    app = grid_app(tmp_path, clock)
    async with app.run_test(size=SIZE) as pilot:
        gid = await grid_entered(pilot)
        await highlight(pilot, "grid")
        await pilot.press("e")  # the grid's own row: which layer?
        assert not isinstance(app.screen, EditLevelsScreen)
        assert any(f"#{gid} is a DCA grid: open it (enter)" in n.message for n in app._notifications)
        await pilot.press("enter")
        await highlight_symbol(pilot, "└ P0 L3 ×2 @95.00")
        await pilot.press("e")
        assert not isinstance(app.screen, EditLevelsScreen)
        assert any(f"#{gid} layer P0 L3 is pending: only a filled layer has levels to edit" in n.message
                   for n in app._notifications)
        await highlight_symbol(pilot, "└ P0 L2 ×1 @98.00")
        await pilot.press("e")
        form = app.screen
        layer2 = next(lg for lg in app.engine.groups[gid].legs if lg.layer == 1)
        assert isinstance(form, EditLevelsScreen) and form.position.leg_id == layer2.id
        form.query_one("#stop-input", Input).value = "96.00"
        await pilot.press("enter")
        await pilot.pause()
        assert layer2.stop == 96.0


async def test_x_on_a_grid_cancels_its_resting_layers_and_closes_the_rest(tmp_path, clock):
    app = grid_app(tmp_path, clock)
    async with app.run_test(size=SIZE) as pilot:
        gid = await grid_entered(pilot)
        group = app.engine.groups[gid]
        await highlight(pilot, "grid")
        await pilot.press("enter", "down", "down", "down")  # on the resting layer: x still exits the grid
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        question = " ".join(text_of(app.screen.query_one("#question", Static)).split())
        assert question.startswith(f"Exit grid #{gid} grid BTCUSDT: close 2 filled layers (2.02 BTCUSDT) at market "
                                   "and cancel 1 resting layer?")
        await pilot.press("n")
        assert group.status == "open"
        await pilot.press("x", "y")
        await pilot.pause()
        assert group.status == "closed"
        assert [lg.status for lg in sorted(group.legs, key=lambda lg: lg.layer)] == ["closed", "closed", "cancelled"]
        assert column(table(app), "Symbol") == []


async def test_a_grid_whose_filled_layers_all_took_profit_stays_while_layers_rest(tmp_path, clock):
    app = grid_app(tmp_path, clock, tp_mode="per_leg", tp_pct=None)
    async with app.run_test(size=SIZE) as pilot:
        await quote(pilot, 100.0)
        assert app.engine.enter_now("grid", "BTCUSDT").ok
        await quote(pilot, 101.0)  # layer 1's own TP: no layer is open, two rest
        await pilot.press("3")
        await pilot.pause()
        gid = next(iter(app.engine.groups))
        assert not app.engine.snapshot().positions
        row = row_of(app, "▸ BTCUSDT ▦1/3")
        assert (row["Status"], row["P&L"], row["Qty"], row["Entry"], row["Mark"]) == ("resting", "+1.00", "0", "—", "")
        await highlight(pilot, "grid")
        detail = detail_text(app)
        assert "DCA grid, TP per_leg · no filled layer open · no aggregate TP · pyramids 0 of 0" in detail
        assert "layers filled 1 of 3, 2 resting, 1 took profit · P&L +1.00 (+1.00%): realized +1.00, open +0.00" in detail
        assert "resting: no layer is open, its orders wait to fill" in detail
        await pilot.press("slash")
        await type_text(pilot, "grid")
        assert column(table(app), "Strategy") == ["grid"]
        await pilot.press("enter", "x")
        question = " ".join(text_of(app.screen.query_one("#question", Static)).split())
        assert question.startswith(f"Exit grid #{gid} grid BTCUSDT: cancel 2 resting layers?")
        await pilot.press("y")
        await pilot.pause()
        assert gid not in app.engine.groups or app.engine.groups[gid].status == "closed"
        assert column(table(app), "Strategy") == []


async def test_in_per_leg_mode_the_target_is_the_nearest_layer_tp(tmp_path, clock):
    app = grid_app(tmp_path, clock, tp_mode="per_leg", tp_pct=None)
    async with app.run_test(size=SIZE) as pilot:
        await grid_entered(pilot)
        assert row_of(app, "▸ BTCUSDT ▦2/3")["Target"] == "99.47"  # layer 2's, under layer 1's 101.00
        await highlight(pilot, "grid")
        assert "no aggregate TP, nearest layer TP 99.47, 1.62 (1.66%) away" in detail_text(app)


# == snapshots ===============================================================================


async def _book_with_a_selection_and_an_open_basket(pilot: Pilot) -> None:
    await trade(pilot)
    await highlight(pilot, "trend")
    await pilot.press("space")
    await highlight(pilot, "acme")
    await pilot.press("space")
    await highlight(pilot, "pair")
    await pilot.press("enter")
    await highlight(pilot, "fade")
    pilot.app.clear_notifications()
    await pilot.pause()


@pytest.mark.parametrize("size", [SIZE, (80, 24)], ids=["100x30", "80x24"])
def test_snapshot_positions(size, snap_compare, tmp_path):
    app = make_app(None, make_engine(tmp_path, FakeClock(T0)))
    assert snap_compare(app, terminal_size=size, run_before=_book_with_a_selection_and_an_open_basket)


async def _grid_with_a_pyramid(pilot: Pilot) -> None:
    """Layer 2 filled and took its profit, then a pyramid entered at 99.00; the grid open."""
    engine = pilot.app.engine
    await grid_entered(pilot)
    await quote(pilot, 99.5)
    await quote(pilot, 99.0)
    assert engine.enter_now("grid", "BTCUSDT").ok
    await quote(pilot, 99.2)
    await highlight(pilot, "grid")
    await pilot.press("enter")
    pilot.app.clear_notifications()
    await pilot.pause()


@pytest.mark.parametrize("size", [SIZE, (80, 24)], ids=["100x30", "80x24"])
def test_snapshot_positions_grid(size, snap_compare, tmp_path):
    assert snap_compare(grid_app(tmp_path, FakeClock(T0), max_pyramids=1), terminal_size=size,
                        run_before=_grid_with_a_pyramid)


async def test_at_80x24_an_open_grid_shows_each_layers_price_state_and_pnl_and_its_whole_detail(tmp_path):
    app = grid_app(tmp_path, FakeClock(T0), max_pyramids=1)
    async with app.run_test(size=(80, 24)) as pilot:
        await _grid_with_a_pyramid(pilot)
        t = table(app)
        names = [c.label.plain for c in t.ordered_columns]
        through_pnl = sum(c.get_render_width(t) for c in t.ordered_columns[:names.index("P&L %") + 1])
        assert through_pnl <= t.scrollable_content_region.width  # symbol (layer, weight, price), state, P&L
        assert len(column(t, "Symbol")) == 7 and t.scrollable_content_region.height >= 1 + 7  # every layer
        detail = app.screen.query_one("#detail", LiveStatic)
        assert detail.visual.get_height(detail.styles, detail.content_size.width) <= detail.content_size.height
        assert "aggregate TP 100.99" in detail_text(app) and detail_text(app).endswith("enter hides the layers")


def test_exit_all_counts_a_grid_with_only_resting_layers():
    from services.views import EngineSnapshot, FeedView, GridLegView, GridView, GroupView

    from screens.commands import _open_groups

    grid = GridView(7, "grid", "BTCUSDT", "buy", "per_leg", None, None, 0, 0,
                    (GridLegView(1, 0, 0, 100.0, 1.0, 101.0, 1.0, 1.0, "tp-hit"),
                     GridLegView(2, 0, 1, 98.0, 1.0, None, 1.0, 0.0, "pending")))
    group = GroupView(7, "grid", ("BTCUSDT",), "buy", "grid", "open", "", (), 1.0, 0.0, 0.0, grid)
    snap = EngineSnapshot(1, 0.0, "PAPER", "running", FeedView("sim", True, None, 1, ()), 0.0, 0.0, 0.0, 1, 10, 0,
                          groups=(group,))
    assert _open_groups(snap) == {7: "BTCUSDT grid, 1 of 2 layers filled"} and _open_groups(snap, "other") == {}
