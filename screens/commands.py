"""Operator commands shared by the screens' keys and the command palette. Destructive ones
confirm first; every result is flashed and the screen re-rendered at once."""

from __future__ import annotations

from typing import Callable, cast

from textual.app import App

from services.views import CommandResult, PositionView, StrategyView

from .base import TraderHost
from .format import money, px, qty, side_word
from .widgets.confirm import ConfirmScreen
from .widgets.edit_levels import EditLevelsScreen
from .widgets.strategy_details import StrategyDetailsScreen


def _host(app: App) -> TraderHost:
    return cast(TraderHost, app)


def report(app: App, result: CommandResult) -> None:
    app.notify(result.message, severity="information" if result.ok else "error",
               title="Done" if result.ok else "Refused")
    _host(app).render_now()


def confirm_then(app: App, question: str, command: Callable[[], CommandResult], title: str = "Confirm") -> None:
    def answered(yes: bool | None) -> None:
        if yes:
            report(app, command())

    app.push_screen(ConfirmScreen(question, title), answered)


def exit_position(app: App, pos: PositionView) -> None:
    engine = _host(app).engine
    confirm_then(
        app,
        f"Exit #{pos.group_id} {side_word(pos.side)} {qty(pos.qty)} {pos.symbol} at market?\n"
        f"mark {px(pos.mark)} · P&L {money(pos.pnl)}",
        lambda: engine.exit_position(pos.group_id),
        title="Exit position",
    )


def exit_all(app: App) -> None:
    host = _host(app)
    snap = host.latest_snapshot
    n = len({p.group_id for p in snap.positions if p.status != "EXITING"}) if snap else 0
    if n == 0:
        report(app, CommandResult.error("there is no open position to exit"))
        return
    confirm_then(app, f"Exit ALL {n} open position(s) at market?", host.engine.exit_all, title="Exit all")


def exit_strategy(app: App, strategy: StrategyView) -> None:
    engine = _host(app).engine
    if strategy.open_positions == 0:
        report(app, CommandResult.error(f"{strategy.id} has no open position to exit"))
        return
    confirm_then(
        app, f"Exit the {strategy.open_positions} open position(s) of {strategy.id} at market?",
        lambda: engine.exit_strategy(strategy.id), title="Exit strategy",
    )


def toggle_pause(app: App, strategy: StrategyView) -> None:
    engine = _host(app).engine
    report(app, engine.resume(strategy.id) if strategy.status == "paused" else engine.pause(strategy.id))


def enter_now(app: App, strategy: StrategyView) -> None:
    engine = _host(app).engine
    symbols = ", ".join(strategy.symbols)
    confirm_then(
        app, f"Enter {strategy.id} now: {side_word(strategy.side)} {symbols} {_how(engine, strategy.id)}?",
        lambda: engine.enter_now(strategy.id), title="Enter now",
    )


def strategy_details(app: App, strategy: StrategyView) -> None:
    """The strategy's configuration and what an entry would risk now (a modal)."""
    if isinstance(app.screen, StrategyDetailsScreen):
        return
    engine = _host(app).engine
    app.push_screen(StrategyDetailsScreen(strategy, engine.config.strategies.get(strategy.id),
                                          lambda: engine.risk_preview(strategy.id)))


def _how(engine, strategy_id: str) -> str:
    """How the strategy's entries are worked, for the confirmation."""
    cfg = engine.config.strategies.get(strategy_id)
    ex = getattr(cfg, "execution", None)
    if ex is None or ex.order_type == "market":
        return "at market"
    then = ", then at market" if ex.market_fallback else ""
    reprices = f"{ex.max_retries} re-price{'s' if ex.max_retries != 1 else ''}"
    return f"with a limit ({reprices}{then})"


def edit_levels(app: App, pos: PositionView) -> None:
    engine = _host(app).engine

    def done(result: CommandResult | None) -> None:
        if result is not None:
            report(app, result)

    app.push_screen(EditLevelsScreen(pos, lambda **changes: engine.edit_levels(pos.group_id, **changes)), done)
