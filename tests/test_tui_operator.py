"""Operator basics on the TUI (issue 12): the book-wide entry switch on E and in the palette,
the palette finding every action even when there is nothing to act on (and saying why), and
the paper account on 3 Positions."""

from __future__ import annotations

from textual.widgets import Static

from tests.test_tui import SIZE, advance, app, engine, status_text, text_of  # noqa: F401  (fixtures)


async def test_e_stops_and_resumes_every_entry_and_the_status_bar_says_so(app, engine):  # noqa: F811
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        await pilot.press("E")
        await advance(pilot, 1)
        assert engine.entries.paused and "ENTRIES STOPPED" in status_text(app)
        assert any("entries stopped for the whole book" in n.message for n in app._notifications)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert "Resume all entries (book)" in commands and "Stop all entries (book)" not in commands
        commands["Resume all entries (book)"].callback()
        await advance(pilot, 1)
        assert not engine.entries.paused and "ENTRIES STOPPED" not in status_text(app)


async def test_the_palette_finds_actions_with_nothing_to_act_on_and_says_why(app, engine):  # noqa: F811
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        for title, why in (("Acknowledge all alerts", "there is no unread alert"),
                           ("Resume a strategy", "no strategy is paused"),
                           ("Promote queued signal", "the signal queue is empty"),
                           ("Risk: run plan now", "the risk engine is not configured")):
            assert title in commands, title
            app.clear_notifications()
            commands[title].callback()
            await pilot.pause()
            messages = [n.message for n in app._notifications]
            assert len(messages) == 1 and messages[0].startswith(why), (title, messages)


async def test_positions_show_the_paper_account(app, engine):  # noqa: F811
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        await pilot.press("3")
        await advance(pilot, 1)
        account = app.latest_snapshot.account
        line = text_of(app.screen.query_one("#book", Static)).splitlines()
        assert line[0].startswith(f"Account: equity {account.equity:,.2f} · cash {account.cash:,.2f}")
        assert line[1].startswith("Book today: realized")
        assert account.gross_exposure > 0 and account.cash == engine.config.paper.starting_cash + engine.realized_total


async def test_clicking_a_tab_switches_screens(app, engine):  # noqa: F811
    from screens.logs import LogsScreen
    from screens.widgets import StatusBar

    async with app.run_test(size=(80, 24)) as pilot:
        await advance(pilot)
        bar = app.screen.query_one(StatusBar)
        offset = text_of(bar).index("6 Logs")  # the tab's column on the bar's first line
        await pilot.click(StatusBar, offset=(offset + 1 + bar.styles.padding.left, 0))
        await pilot.pause()
        assert isinstance(app.screen, LogsScreen)
