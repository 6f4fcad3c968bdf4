"""The Risk screen (7): every losing position with the risk engine's checks and its projected
offset plan; `r` runs it now (confirmed), `s` skips it once, `b` blocks it.

The book of test_risk_engine: `grid` (a one-layer DCA grid) holds 10 BTCUSDT bought at 100,
`w1` 4 ETHUSDT at 50 and `w2` 10 ACME at 20; the scripted feed (bid = ask, no fees) then
moves them to 97, 55 and 22: grid is a -30.00 loser (3 %), each winner is +20.00. Its plan:
all 4 ETHUSDT (+20.00), then 5 of the 10 ACME (+10.00)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from screens.risk import RiskScreen
from screens.widgets import ConfirmScreen, LiveStatic
from services.clock import FakeClock
from services.config import TradingConfig
from services.engine import Engine
from tests.conftest import T0
from tests.test_tui import SIZE, column, status_text, text_of
from tests.test_tui_entry import advance, make_engine
from tui_trader.app import TraderApp, make_app

START = {"BTCUSDT": 100.0, "ETHUSDT": 50.0, "ACME": 20.0}
STUCK = {"BTCUSDT": 97.0, "ETHUSDT": 55.0, "ACME": 22.0}
RISK = {"loss_threshold_pct": 2, "timer_s": 600, "timer_start": "after_all_dca_filled", "max_winners_to_combine": 2}


def risk_config(risk: dict | None = RISK, **changes) -> TradingConfig:
    manual = {"side": "buy", "entry": "manual"}
    cfg = {
        "paper": {"slippage_bps": 0, "maker_fee_bps": 0, "taker_fee_bps": 0},
        "symbols": {sym: {"start_price": price, "tick_interval_s": 1, "tick_size": 0.01, "lot_step": 1}
                    for sym, price in START.items()},
        "strategies": {
            "grid": {**manual, "symbols": ["BTCUSDT"], "sizing": {"fixed_value": 1000},
                     "dca": {"layers": [{"gap_pct": 0, "weight": 1, "tp_pct": 50}]}},
            "w1": {**manual, "symbols": ["ETHUSDT"], "sizing": {"fixed_qty": 4}},
            "w2": {**manual, "symbols": ["ACME"], "sizing": {"fixed_qty": 10}},
        },
    }
    if risk is not None:
        cfg["risk_engine"] = {**risk, **changes}
    return TradingConfig.model_validate(cfg)


def risk_engine(tmp_path: Path, clock: FakeClock, cfg: TradingConfig | None = None) -> Engine:
    engine = make_engine(tmp_path, clock, cfg or risk_config())
    engine.feed.book = {sym: (price, price) for sym, price in START.items()}
    return engine


@pytest.fixture
def engine(tmp_path: Path, clock: FakeClock) -> Engine:
    return risk_engine(tmp_path, clock)


@pytest.fixture
def app(engine: Engine) -> TraderApp:
    return make_app(None, engine)


def ids(engine: Engine) -> dict[str, int]:
    return {g.strategy_id: g.id for g in engine.groups.values()}


async def stuck(pilot: Pilot, wait: int = 3) -> RiskScreen:
    """Enter the three positions, move the prices to STUCK, wait `wait` s and show screen 7."""
    engine = pilot.app.engine
    await advance(pilot, 1)  # quotes for every symbol
    for sid in ("grid", "w1", "w2"):
        assert engine.enter_now(sid).ok
    await advance(pilot, 1)
    engine.feed.book = {sym: (price, price) for sym, price in STUCK.items()}
    await advance(pilot, wait)
    await pilot.press("7")
    await advance(pilot, 1)
    screen = pilot.app.screen
    assert isinstance(screen, RiskScreen)
    return screen


def plan(screen: RiskScreen) -> list[str]:
    return [line.rstrip() for line in text_of(screen.query_one("#plan", LiveStatic)).splitlines()]


def flat(widget: Static) -> str:
    return " ".join(text_of(widget).split())


def shown_lines(widget: Static) -> list[str]:
    """What a markup-free Static holds, as it is (text_of would read "[risk_engine]" as markup)."""
    return str(widget.content).splitlines()


def question(app: TraderApp) -> str:
    return " ".join(text_of(app.screen.query_one("#question", Static)).split())


def notified(app: TraderApp, text: str) -> bool:
    return any(text in n.message for n in app._notifications)


# == what the screen shows ===================================================================


async def test_a_loser_shows_its_loss_timer_checks_and_plan(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        screen = await stuck(pilot)
        g = ids(engine)
        table = screen.table
        assert column(table, "#") == [str(g["grid"])]  # the winners are not listed
        assert column(table, "Strategy") == ["grid"]
        assert column(table, "Loss %") == ["-3.00%"]
        assert column(table, "Loss") == ["-30.00"]
        assert column(table, "State") == ["waiting"]
        assert column(table, "Timer") == ["9m55s"]  # 600 s from the grid's fill, 5 s ago
        assert column(table, "Pyr.") == ["0/0"]
        assert column(table, "Age") == ["5s"]
        assert column(table, "Winners") == ["2"]
        assert column(table, "Covered/req.") == ["30.00/30.00"]

        mode = flat(screen.query_one("#mode", LiveStatic))
        assert mode.startswith("Risk engine AUTO: a plan runs by itself once eligible and covered")
        assert "Eligible at loss ≥ 2.00%, 10m00s after all DCA layers filled · up to 2 winners pay for one loser" in mode
        assert screen.query_one("#losers-box").border_title.endswith("· 1 losing, 0 eligible")
        assert screen.query_one("#plan-box").border_title == f"Checks and plan of #{g['grid']} grid BTCUSDT"

        w1_leg = engine.groups[g["w1"]].open_legs()[0].id
        w2_leg = engine.groups[g["w2"]].open_legs()[0].id
        assert plan(screen) == [
            f"#{g['grid']} grid BTCUSDT long · loss -30.00 (-3.00%) · waiting for: timer",
            "  ✓ loss 3.00% >= 2.00%",
            "  ✓ pyramids 0/0 (not required)",
            "  ✗ timer: 9m55s left (started when every DCA layer filled)",
            "  ✓ age 5s (no minimum)",
            "  ✓ not blocked",
            "  ✓ not skipped",
            "Plan, in order:",
            f"  1. close 4 ETHUSDT of #{g['w1']} leg {w1_leg} → expected +20.00",
            f"  2. close 5 ACME of #{g['w2']} leg {w2_leg} → expected +10.00",
            f"  3. then close all of #{g['grid']} BTCUSDT → expected -30.00 (its loss and exit fee)",
            "Covered +30.00 of 30.00 required: the winners pay for the loss",
        ]

        await advance(pilot, 2)  # the timer and the age tick with the clock
        assert column(table, "Timer") == ["9m53s"] and column(table, "Age") == ["7s"]


async def test_a_plan_the_winners_cannot_cover_shows_its_shortfall(tmp_path, clock):
    app = make_app(None, risk_engine(tmp_path, clock, risk_config(max_winners_to_combine=1, timer_s=0)))
    async with app.run_test(size=SIZE) as pilot:
        screen = await stuck(pilot)
        assert column(screen.table, "State") == ["ELIGIBLE"]  # eligible, but not covered: it waits
        assert column(screen.table, "Timer") == ["due"]
        assert column(screen.table, "Winners") == ["1"]
        assert column(screen.table, "Covered/req.") == ["20.00/30.00"]
        assert plan(screen)[-2:] == [
            "Covered +20.00 of 30.00 required · shortfall 10.00",
            "not covered: winners give +20.00 of 30.00 needed (max_winners_to_combine 1)",
        ]
        assert "grid" in {g.strategy_id for g in app.engine.groups.values()}

        await pilot.press("r")  # run anyway: the confirmation says what it costs
        assert "The winners cover 20.00 of the 30.00 required: the book realizes -10.00 net." in question(app)
        await pilot.press("n")


async def test_manual_mode_and_a_minimum_age_are_said(tmp_path, clock):
    cfg = risk_config(enabled=False, timer_s=0, min_age_s=60, require_max_pyramids=True)
    app = make_app(None, risk_engine(tmp_path, clock, cfg))
    async with app.run_test(size=SIZE) as pilot:
        screen = await stuck(pilot)
        mode = flat(screen.query_one("#mode", LiveStatic))
        assert mode.startswith("Risk engine MANUAL: plans are shown, r runs them (enabled = false)")
        assert "Eligible at loss ≥ 2.00%, all pyramids used, 0s after all DCA layers filled, open ≥ 1m00s" in mode
        assert column(screen.table, "Age") == ["5s ✗"]
        assert column(screen.table, "State") == ["waiting"]
        assert plan(screen)[0].endswith("waiting for: age")

        await advance(pilot, 60)  # old enough: eligible, and in manual mode it stays until r
        assert column(screen.table, "Age") == ["1m05s ✓"]
        assert column(screen.table, "State") == ["ELIGIBLE"]
        assert "grid" in {g.strategy_id for g in app.engine.groups.values()}


async def test_with_no_losing_position_the_screen_says_so(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, 1)
        await pilot.press("7")
        await advance(pilot, 1)
        screen = app.screen
        assert isinstance(screen, RiskScreen)
        assert not screen.table.display and not screen.query_one("#plan-box").display
        assert flat(screen.query_one("#losers-empty", Static)).startswith("No losing position.")
        await pilot.press("r")  # nothing to act on: said so, nothing opens
        assert app.screen is screen
        assert notified(app, "No losing position highlighted")


async def test_when_the_risk_engine_is_off_the_screen_says_how_to_turn_it_on(tmp_path, clock):
    app = make_app(None, risk_engine(tmp_path, clock, risk_config(risk=None)))
    async with app.run_test(size=SIZE) as pilot:
        screen = await stuck(pilot)
        off = screen.query_one("#off", Static)
        assert off.display
        shown = " ".join(" ".join(shown_lines(off)).split())
        assert shown.startswith("The risk engine is OFF.")
        assert "add a [risk_engine] section to the settings and restart: [risk_engine] loss_threshold_pct = 2" in shown
        for hidden in ("#mode", "#losers-box", "#plan-box"):
            assert not screen.query_one(hidden).display
        example = [line for line in shown_lines(off) if line.startswith("  ")]
        assert len(example) == 8 and max(map(len, example)) <= 78  # the example fits 80 columns as it is
        keys = {b.binding.key for b in screen.active_bindings.values() if b.enabled}
        assert not keys & {"r", "s", "b"}  # nothing to run, skip or block: no such keys in the footer
        await pilot.press("r")
        assert app.screen is screen


# == operator actions ========================================================================


async def test_s_skips_the_eligible_loser_once_and_s_again_undoes_it(tmp_path, clock):
    # eligible at once, but one winner does not cover it: the engine leaves it, so the skip stays
    app = make_app(None, risk_engine(tmp_path, clock, risk_config(max_winners_to_combine=1, timer_s=0)))
    async with app.run_test(size=SIZE) as pilot:
        screen = await stuck(pilot)
        engine = app.engine
        grid = ids(engine)["grid"]
        await pilot.press("s")
        await advance(pilot, 2)
        assert column(screen.table, "State") == ["SKIPPED"]
        assert engine.groups[grid].risk_hold == "skipped"
        assert "  ✗ skipped once by the operator" in plan(screen)
        assert notified(app, f"#{grid} BTCUSDT: skipped once")

        await pilot.press("s")
        await pilot.pause()
        assert column(screen.table, "State") == ["ELIGIBLE"]
        assert engine.groups[grid].risk_hold == ""
        assert notified(app, "the skip is withdrawn")


async def test_b_blocks_the_loser_and_b_again_unblocks_it(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        screen = await stuck(pilot)
        grid = ids(engine)["grid"]
        await pilot.press("b")
        await pilot.pause()
        assert column(screen.table, "State") == ["BLOCKED"]
        assert engine.groups[grid].risk_hold == "blocked"
        assert notified(app, "blocked: the risk engine never closes it")

        await pilot.press("s")  # blocked: a skip is refused with the reason
        await pilot.pause()
        assert notified(app, f"#{grid} is blocked; undo that first")
        assert column(screen.table, "State") == ["BLOCKED"]

        await pilot.press("b")
        await pilot.pause()
        assert column(screen.table, "State") == ["waiting"]
        assert notified(app, "unblocked: the risk engine may close it again")


async def test_r_asks_first_and_escape_closes_nothing(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        screen = await stuck(pilot)
        g = ids(engine)
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmScreen)
        assert question(app) == (
            f"Run the risk plan of #{g['grid']} grid BTCUSDT (loss -30.00, -3.00%) now? close 4 ETHUSDT of "
            f"#{g['w1']} (+20.00) and 5 ACME of #{g['w2']} (+10.00) to cover #{g['grid']}'s -30.00; covered +30.00. "
            "It is not eligible (timer); it runs anyway. "
            f"This closes the winners' parts, then all of #{g['grid']}, at market.")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        assert ids(engine) == g
        assert column(screen.table, "Strategy") == ["grid"]


async def test_r_and_yes_closes_the_loser_and_the_winners_parts(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        screen = await stuck(pilot)
        g = ids(engine)
        await pilot.press("r", "y")
        await advance(pilot, 1)
        assert app.screen is screen
        assert set(ids(engine)) == {"w2"}  # the loser and the first winner closed...
        assert engine.groups[g["w2"]].open_legs()[0].qty == pytest.approx(5.0)  # ...half of the second
        assert engine.realized_today == pytest.approx({"grid": -30.0, "w1": 20.0, "w2": 10.0})
        assert notified(app, f"#{g['grid']}: close 4 ETHUSDT")
        assert not screen.table.display  # no loser left
        assert flat(screen.query_one("#losers-empty", Static)).startswith("No losing position.")


async def test_the_command_palette_offers_the_risk_actions_for_each_loser(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await stuck(pilot)
        grid = ids(engine)["grid"]
        label = f"#{grid} BTCUSDT (grid)"
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert {f"Risk: run plan now {label}", f"Risk: skip once {label}", f"Risk: block {label}"} <= commands.keys()
        commands[f"Risk: block {label}"].callback()
        await pilot.pause()
        assert engine.groups[grid].risk_hold == "blocked"
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert f"Risk: unblock {label}" in commands
        commands[f"Risk: run plan now {label}"].callback()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)  # confirmed like the key
        await pilot.press("n")
        assert grid in engine.groups


async def test_7_is_listed_with_the_screens_and_its_keys_in_the_help(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await stuck(pilot)
        tabs = status_text(app).splitlines()[0].rstrip()
        assert " 6 Logs  7 Risk " in tabs and tabs.endswith(" 00:00:06 UTC")
        assert "Screen: Risk (7)" in {c.title for c in app.get_system_commands(app.screen)}
        await pilot.press("question_mark")
        await pilot.pause()
        help_text = flat(app.screen.query_one(Static))
        assert "Risk screen" in help_text
        assert "r Run plan" in help_text and "s Skip once" in help_text and "b Block" in help_text


async def test_at_80x24_the_key_columns_and_the_plan_are_readable(app, engine):
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await stuck(pilot)
        # every screen's tab and the clock (without its " UTC": no room for it)
        tabs = status_text(app).splitlines()[0].rstrip()
        assert tabs.endswith(" 5 Queue  6 Logs  7 Risk   00:00:06")
        mode = screen.query_one("#mode", LiveStatic)
        assert mode.size.height == 3 and text_of(mode).rstrip().endswith("pay for one loser")  # the rules in full
        table = screen.table
        shown = [c.label.plain for c in table.ordered_columns]
        widths = [c.get_render_width(table) for c in table.ordered_columns]
        right = sum(widths[: shown.index("Timer") + 1])
        assert right <= table.size.width  # #, strategy, symbol, loss, state and timer without scrolling
        box = screen.query_one("#plan-box")
        lines = plan(screen)
        assert box.region.height - 1 >= len(lines)  # the whole plan under its title
        assert max(map(len, lines)) <= box.size.width
        assert any(line.startswith("  3. then close all of #") for line in lines)


# == snapshots ===============================================================================


async def _stuck_loser(pilot: Pilot) -> None:
    await stuck(pilot)
    pilot.app.clear_notifications()
    await pilot.pause()


def test_snapshot_risk(snap_compare, tmp_path):
    app = make_app(None, risk_engine(tmp_path, FakeClock(T0)))
    assert snap_compare(app, terminal_size=SIZE, run_before=_stuck_loser)


def test_snapshot_risk_at_80x24(snap_compare, tmp_path):
    app = make_app(None, risk_engine(tmp_path, FakeClock(T0)))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_stuck_loser)
