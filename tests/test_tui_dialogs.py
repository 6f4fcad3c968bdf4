"""Dialogs and toasts at 80x24 (issue 12): the strategy details' notes read across the width,
toasts never sit on a screen's detail panel or on a modal's box, exit-all lists a DCA grid
once and exits only the positions it listed, 7 Risk lists the biggest loss in money first
and `n` on a blocked strategy is refused with the reason before any Yes/No."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.containers import Vertical
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static
from textual.widgets._toast import Toast

from screens.positions import PositionsScreen
from screens.risk import RiskScreen
from screens.schedule import ScheduleScreen
from screens.widgets import ConfirmScreen, StrategyDetailsScreen
from services.clock import FakeClock
from services.config import TradingConfig
from tui_trader.wiring import build_engine
from services.market import Quote
from services.store import SqlStore
from tests.conftest import T0
from tests.test_tui import column, text_of
from tests.test_tui_entry import advance
from tests.test_tui_entry import make_engine as scheduled_engine
from tests.test_tui_positions import grid_app, grid_entered, make_engine, positions_config, second, trade, type_text
from tests.test_tui_risk import risk_config, risk_engine
from tui_trader.app import TraderApp, make_app

SMALL = (80, 24)


def question(app: TraderApp) -> str:
    return " ".join(text_of(app.screen.query_one("#question", Static)).split())


def toasts(app: TraderApp) -> list[Toast]:
    return list(app.screen.query(Toast))


def notified(app: TraderApp, text: str) -> bool:
    return any(text in n.message for n in app._notifications)


# == the strategy details ====================================================================


def _details_of(strategy: str):
    async def run_before(pilot: Pilot) -> None:
        await advance(pilot, 1)
        table = pilot.app.screen.query_one("#strategies", DataTable)
        await pilot.press(*["down"] * column(table, "Strategy").index(strategy), "enter")
        pilot.app.clear_notifications()
        await pilot.pause()

    return run_before


async def test_at_80x24_a_symbols_note_in_the_risk_preview_reads_across_the_width(tmp_path):
    app = make_app(None, scheduled_engine(tmp_path, FakeClock(T0)))
    async with app.run_test(size=SMALL) as pilot:
        await _details_of("big")(pilot)  # 5,000 of ACME against an allocation of 1,000
        assert isinstance(app.screen, StrategyDetailsScreen)
        risk = [line.strip() for line in text_of(app.screen.query_one("#risk", Static)).splitlines()]
        assert risk[1].split() == ["ACME", "250", "20.00", "5,000.00", "-50.00", "+100.00", "see", "below"]
        assert " ".join(risk[2:]) == "ACME: insufficient funds: needs 5,000.00, big has 1,000.00 free of 1,000.00 allocated"


async def test_at_80x24_the_details_show_a_dca_grids_layers_one_a_line_as_the_settings_write_them(tmp_path, clock):
    app = grid_app(tmp_path, clock)
    async with app.run_test(size=SMALL) as pilot:
        await advance(pilot, 1)
        await pilot.press("enter")
        assert isinstance(app.screen, StrategyDetailsScreen)
        config = [" ".join(line.split()) for line in text_of(app.screen.query_one("#config", Static)).splitlines()]
        layers = next(i for i, line in enumerate(config) if line.startswith("layers "))
        assert config[layers].endswith("layers { gap_pct = 0, weight = 1,")
        assert config[layers + 1:layers + 3] == ["tp_pct = 1 },", "{ gap_pct = 2, weight = 1,"]


def test_snapshot_strategy_details_with_a_note_at_80x24(snap_compare, tmp_path):
    app = make_app(None, scheduled_engine(tmp_path, FakeClock(T0)))
    assert snap_compare(app, terminal_size=SMALL, run_before=_details_of("big"))


# == toasts (run_test shows none unless asked: notifications=True) ===========================


async def test_at_80x24_a_toast_on_positions_leaves_the_detail_panel_and_the_footer_clear(tmp_path):
    app = make_app(None, make_engine(tmp_path, FakeClock(T0)))
    async with app.run_test(size=SMALL, notifications=True) as pilot:
        await trade(pilot)
        app.clear_notifications()  # the entries' flashes
        for n in range(3):  # the most flashes at once
            app.notify(f"flash {n}: a message long enough to take two lines in its toast", timeout=60)
        await pilot.pause()
        shown = toasts(app)
        assert len(shown) == 3
        panels = [app.screen.query_one("#detail").region, app.screen.query_one("Footer").region]
        assert all(panel.height for panel in panels)
        for toast in shown:
            assert not any(toast.region.overlaps(panel) for panel in panels), (toast.region, panels)


async def test_at_80x24_a_toast_never_covers_an_open_modals_box(tmp_path):
    app = make_app(None, make_engine(tmp_path, FakeClock(T0)))
    async with app.run_test(size=SMALL, notifications=True) as pilot:
        await trade(pilot)
        app.clear_notifications()
        await pilot.press("X")
        await type_text(pilot, "EXIT ALL")
        await pilot.press("enter")  # not the word: a toast says so
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and notified(app, "Type EXIT exactly")
        box = app.screen.query_one(Vertical).region
        (toast,) = toasts(app)
        assert not toast.region.overlaps(box) and box.bottom <= SMALL[1]
        await pilot.press("escape")

        await pilot.press("1", "enter")  # the strategy details: the whole height of the terminal
        assert isinstance(app.screen, StrategyDetailsScreen)
        app.notify("a flash while the details are open", timeout=60)
        await pilot.pause()
        box = app.screen.query_one("#details").region
        (shown,) = [t for t in toasts(app) if t.region.area]  # the newest only: room for the box
        assert "a flash while the details are open" in str(shown.render())
        assert not shown.region.overlaps(box) and box.bottom <= SMALL[1]
        under = app.screen_stack[-2]  # its own toasts would show through the dimmed background
        assert list(under.query(Toast)) and not any(t.visible for t in under.query(Toast))


async def _toast_and_confirm(pilot: Pilot) -> None:
    await trade(pilot)
    pilot.app.clear_notifications()
    await pilot.press("X")
    await type_text(pilot, "EXIT ALL")
    await pilot.press("enter")
    pilot.app.clear_notifications()
    pilot.app.notify("Type EXIT exactly to confirm, or escape to cancel", severity="warning", timeout=600)
    await pilot.pause()


def test_snapshot_toast_over_the_exit_all_confirmation_at_80x24(snap_compare, tmp_path):
    app = make_app(None, make_engine(tmp_path, FakeClock(T0)))
    assert snap_compare(app, terminal_size=SMALL, run_before=_toast_and_confirm)


# == exit all ================================================================================


async def test_exit_all_lists_a_grid_once_with_its_layers(tmp_path, clock):
    app = grid_app(tmp_path, clock)
    async with app.run_test(size=SMALL) as pilot:
        gid = await grid_entered(pilot)  # two of its three layers filled: two open legs
        await pilot.press("X")
        assert question(app).startswith(f"Exit ALL 1 open position(s) at market: #{gid} BTCUSDT grid, "
                                        "2 of 3 layers filled?")


async def test_exit_all_asks_again_when_a_position_opened_or_closed_before_the_confirmation(tmp_path, clock):
    engine = make_engine(tmp_path, clock, positions_config(trend={"entry": "manual"}))
    app = make_app(None, engine)
    async with app.run_test(size=SMALL) as pilot:
        await trade(pilot)  # fade, pair and acme; trend waits for n
        ids = {g.strategy_id: g.id for g in engine.groups.values()}
        await pilot.press("X")
        assert question(app).startswith("Exit ALL 3 open position(s)")

        assert engine.enter_now("trend").ok  # meanwhile: trend enters, acme is closed
        assert engine.exit_position(ids["acme"]).ok
        await second(pilot)
        trend = next(g.id for g in engine.groups.values() if g.strategy_id == "trend")
        await type_text(pilot, "EXIT")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert question(app).startswith(f"Nothing was exited: #{trend} BTCUSDT opened, #{ids['acme']} ACME closed "
                                        "or is exiting since you were asked. Exit ALL 3 open position(s) at market: ")
        assert not any(g.pending_exit for g in engine.groups.values() if g.strategy_id != "acme")
        assert app.screen.query_one("#word", Input).value == ""  # the word is typed again

        await type_text(pilot, "EXIT")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PositionsScreen)
        assert all(g.pending_exit or g.status == "closed" for g in engine.groups.values())


# == 7 Risk ==================================================================================


async def test_risk_lists_the_biggest_loss_in_money_first_whatever_its_percentage(tmp_path, clock):
    engine = risk_engine(tmp_path, clock, risk_config())
    app = make_app(None, engine)
    async with app.run_test(size=SMALL) as pilot:
        await advance(pilot, 1)
        for sid in ("grid", "w1", "w2"):
            assert engine.enter_now(sid).ok
        await advance(pilot, 1)
        # grid: 10 BTCUSDT from 100 to 97, -30.00 (-3 %); w1: 4 ETHUSDT from 50 to 45, -20.00 (-10 %)
        engine.feed.book = {"BTCUSDT": (97.0, 97.0), "ETHUSDT": (45.0, 45.0), "ACME": (22.0, 22.0)}
        await advance(pilot, 1)
        await pilot.press("7")
        await advance(pilot, 1)
        screen = app.screen
        assert isinstance(screen, RiskScreen)
        assert screen.query_one("#losers-box").border_title.startswith("Losing positions, biggest loss first")
        assert column(screen.table, "Strategy") == ["grid", "w1"]
        assert column(screen.table, "Loss") == ["-30.00", "-20.00"]
        assert column(screen.table, "Loss %") == ["-3.00%", "-10.00%"]


# == enter now when entries are blocked ======================================================


def blocked_config(book: dict | None = None) -> TradingConfig:
    """trend enters BTCUSDT by itself; manual enters ACME on n and stops at a P&L of -1."""
    cfg = {
        "paper": {"slippage_bps": 0, "maker_fee_bps": 0, "taker_fee_bps": 0},
        "symbols": {"BTCUSDT": {"start_price": 100.0, "tick_interval_s": 1},
                    "ACME": {"start_price": 20.0, "tick_interval_s": 1}},
        "strategies": {
            "trend": {"symbols": ["BTCUSDT"], "side": "buy", "sizing": {"fixed_qty": 1}},
            "manual": {"symbols": ["ACME"], "side": "buy", "entry": "manual", "sizing": {"fixed_qty": 1},
                       "pnl": {"stop": 1}},
        },
    }
    if book is not None:
        cfg["book"] = book
    return TradingConfig.model_validate(cfg)


async def quote(pilot: Pilot, symbol: str, price: float) -> None:
    engine = pilot.app.engine
    engine.on_quote(Quote(symbol, engine.clock.now(), price, price, 0.0))
    pilot.app.render_now()
    await pilot.pause()


async def press_n_on(pilot: Pilot, strategy: str) -> None:
    table = pilot.app.screen.query_one("#strategies", DataTable)
    table.move_cursor(row=column(table, "Strategy").index(strategy))
    await pilot.press("n")
    await pilot.pause()


@pytest.mark.parametrize("blocked_by", ["book", "strategy", "operator"])
async def test_n_while_entries_are_blocked_is_refused_with_the_reason_before_any_question(tmp_path: Path, blocked_by):
    engine = build_engine(blocked_config({"daily_loss_limit": 5}), FakeClock(T0), SqlStore(f"sqlite:///{tmp_path}/t.db"))
    app = make_app(None, engine)
    async with app.run_test(size=SMALL) as pilot:
        await quote(pilot, "BTCUSDT", 100.0)  # trend enters
        await quote(pilot, "ACME", 20.0)
        if blocked_by == "book":
            await quote(pilot, "BTCUSDT", 94.0)  # the day's P&L -6: the book's daily loss limit
            reason = "entries are blocked: daily loss limit of 5.00 reached by the book"
        elif blocked_by == "strategy":
            assert engine.enter_now("manual").ok
            await quote(pilot, "ACME", 19.0)  # manual's P&L -1: its P&L stop fires
            reason = "entries are blocked: P&L stop of manual fired at P&L -1.00"
        else:
            await pilot.press("E")  # every entry of the book stopped
            reason = "entries are stopped for the whole book; resume them first (E)"
        assert isinstance(app.screen, ScheduleScreen)
        app.clear_notifications()
        await press_n_on(pilot, "manual")
        assert not isinstance(app.screen, ConfirmScreen)
        refusal = next(n for n in app._notifications if n.title == "Refused")
        assert refusal.message.startswith(f"manual cannot enter now: {reason}")
        assert not any(g.strategy_id == "manual" and g.status == "open" for g in engine.groups.values())


async def test_n_on_a_strategy_that_takes_entries_still_asks_first(tmp_path: Path):
    engine = build_engine(blocked_config(), FakeClock(T0), SqlStore(f"sqlite:///{tmp_path}/t.db"))
    app = make_app(None, engine)
    async with app.run_test(size=SMALL) as pilot:
        await quote(pilot, "ACME", 20.0)
        await press_n_on(pilot, "manual")
        assert isinstance(app.screen, ConfirmScreen) and question(app).startswith("Enter manual now: long ACME")
