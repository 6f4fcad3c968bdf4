"""Dialogs and toasts at 80x24 (issue 12): the strategy details' notes read across the width."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from screens.widgets import StrategyDetailsScreen
from services.clock import FakeClock
from tests.conftest import T0
from tests.test_tui import column, text_of
from tests.test_tui_entry import advance
from tests.test_tui_entry import make_engine as scheduled_engine
from tests.test_tui_positions import grid_app
from tui_trader.app import make_app

SMALL = (80, 24)


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
