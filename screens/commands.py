"""Operator commands shared by the screens' keys and the command palette. Destructive ones
confirm first; every result is flashed and the screen re-rendered at once."""

from __future__ import annotations

from typing import Callable, Mapping, cast

from textual.app import App

from services.rules.pnl_scopes import BOOK
from services.ports import EngineCommands
from services.views import (
    CommandResult, EngineSnapshot, LayerState, PositionStatus, PositionView, QueuedSignalView, RiskView, StrategyStatus,
    StrategyView,
)

from .base import TraderHost
from .format import money, pct, px, qty, side_word
from .widgets.confirm import ConfirmScreen
from .widgets.edit_levels import EditLevelsScreen
from .widgets.strategy_details import StrategyDetailsScreen

EXIT_ALL_WORD = "EXIT"
"""What the operator types to confirm exiting everything."""

LISTED = 12
"""Positions named in a confirmation; the rest are counted."""


def _host(app: App) -> TraderHost:
    return cast(TraderHost, app)


def report(app: App, result: CommandResult) -> None:
    app.notify(result.message, severity="information" if result.ok else "error",
               title="Done" if result.ok else "Refused")
    _host(app).render_now()


def confirm_then(app: App, question: str, command: Callable[[], CommandResult], title: str = "Confirm",
                 word: str | None = None) -> None:
    """Run `command` once the operator confirms (by typing `word` when one is given)."""
    def answered(yes: bool | None) -> None:
        if yes:
            report(app, command())

    app.push_screen(ConfirmScreen(question, title, word), answered)


def exit_position(app: App, pos: PositionView) -> None:
    """Exit the position group `pos` belongs to (a basket: all its legs)."""
    host = _host(app)
    engine = host.engine
    group = host.latest_snapshot.group(pos.group_id) if host.latest_snapshot else None
    legs = group.legs if group is not None else ()
    if len(legs) > 1:
        question = (f"Exit basket #{pos.group_id} ({', '.join(p.symbol for p in legs)}), all {len(legs)} legs, "
                    f"at market?\nP&L {money(sum(p.pnl for p in legs))}")
    else:
        question = (f"Exit #{pos.group_id} {side_word(pos.side)} {qty(pos.qty)} {pos.symbol} at market?\n"
                    f"mark {px(pos.mark)} · P&L {money(pos.pnl)}")
    confirm_then(app, question, lambda: engine.exit_position(pos.group_id), title="Exit position")


def exit_positions(app: App, groups: Mapping[int, str]) -> None:
    """Exit several position groups ({group id: what it holds, e.g. "BTCUSDT"}) in one go."""
    engine = _host(app).engine
    if not groups:
        report(app, CommandResult.error("no position selected"))
        return
    n = len(groups)
    confirm_then(
        app, f"Exit {n} position{'s' if n != 1 else ''} at market: {listing(groups)}?",
        lambda: engine.exit_positions(list(groups)), title="Exit positions",
    )


def exit_all(app: App) -> None:
    """Exit every open position: the operator types EXIT_ALL_WORD to confirm."""
    _exit_listed(app, None, _host(app).engine.exit_positions)


def exit_strategy(app: App, strategy: StrategyView) -> None:
    exit_strategy_id(app, strategy.id)


def exit_strategy_id(app: App, strategy_id: str) -> None:
    """Exit a strategy's open positions, also one no longer in the settings."""
    engine = _host(app).engine
    # exit_strategy also records the operator's "close" for a strategy gone from the settings
    _exit_listed(app, strategy_id, lambda ids: engine.exit_strategy(strategy_id))


def _exit_listed(app: App, strategy_id: str | None, command: Callable[[list[int]], CommandResult],
                 changed: str = "") -> None:
    """Confirm the exit of the open positions (of one strategy, or all) listed in the question,
    then exit exactly those. If the open positions changed before the operator confirmed (one
    opened, closed or began exiting meanwhile), nothing is exited: the question comes again
    with the new list and says what changed."""
    host = _host(app)
    groups = _open_groups(host.latest_snapshot, strategy_id)
    if not groups:
        nothing = "there is no open position" if strategy_id is None else f"{strategy_id} has no open position"
        report(app, CommandResult.error(f"{changed} {nothing} to exit".strip()))
        return

    def answered(yes: bool | None) -> None:
        if not yes:
            return
        host.render_now()  # the open positions as they are now
        now = _open_groups(host.latest_snapshot, strategy_id)
        if now.keys() == groups.keys():
            report(app, command(list(groups)))
        else:
            _exit_listed(app, strategy_id, command, f"Nothing was exited: {_changes(groups, now)} since you were asked.")

    n = len(groups)
    if strategy_id is None:
        question, title, word = f"Exit ALL {n} open position(s) at market: {listing(groups)}?", "Exit all", EXIT_ALL_WORD
    else:
        question, title, word = (f"Exit the {n} open position(s) of {strategy_id} at market: {listing(groups)}?",
                                 "Exit strategy", None)
    app.push_screen(ConfirmScreen(f"{changed}\n\n{question}" if changed else question, title, word), answered)


def _changes(before: Mapping[int, str], after: Mapping[int, str]) -> str:
    """"#9 ETHUSDT opened, #4 BTCUSDT closed or is exiting" between two listings of open positions."""
    parts = [f"#{gid} {what} opened" for gid, what in after.items() if gid not in before]
    parts += [f"#{gid} {what} closed or is exiting" for gid, what in before.items() if gid not in after]
    return ", ".join(parts)


def _open_groups(snap: EngineSnapshot | None, strategy_id: str | None = None) -> dict[int, str]:
    """{group id: what it holds} of the open (not already exiting) groups, of one strategy or
    all: its symbol, a basket's symbols ("BTCUSDT+ETHUSDT"), a DCA grid's symbol once with its
    layers ("BTCUSDT grid, 2 of 3 layers filled"), also while only resting layers are left."""
    labels = {}
    for g in snap.groups if snap else ():
        if strategy_id not in (None, g.strategy_id) or any(p.status == PositionStatus.EXITING for p in g.legs):
            continue
        if g.grid is not None:
            filled = sum(lg.state not in (LayerState.PENDING, LayerState.CANCELLED) for lg in g.grid.legs)
            labels[g.id] = f"{g.grid.symbol} grid, {filled} of {len(g.grid.legs)} layers filled"
        elif g.legs:
            labels[g.id] = "+".join(p.symbol for p in g.legs)
    return labels


def listing(groups: Mapping[int, str], most: int = LISTED) -> str:
    """"#4 BTCUSDT, #7 ETHUSDT", the first `most` of them and how many more."""
    items = [f"#{gid} {what}" for gid, what in groups.items()]
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more


def toggle_pause(app: App, strategy: StrategyView) -> None:
    engine = _host(app).engine
    report(app, engine.resume(strategy.id) if strategy.status == StrategyStatus.PAUSED else engine.pause(strategy.id))


def enter_now(app: App, strategy: StrategyView) -> None:
    """Confirm, then enter; an entry the engine would refuse is refused at once, with why."""
    host = _host(app)
    engine = host.engine
    refusal = entry_refusal(host.latest_snapshot, strategy)
    if refusal:
        report(app, CommandResult.error(f"{strategy.id} cannot enter now: {refusal}"))
        return
    symbols = ", ".join(strategy.symbols)
    confirm_then(
        app, f"Enter {strategy.id} now: {side_word(strategy.side)} {symbols} {_how(engine, strategy.id)}?",
        lambda: engine.enter_now(strategy.id), title="Enter now",
    )


def entry_refusal(snap: EngineSnapshot | None, strategy: StrategyView) -> str:
    """Why the engine refuses the strategy's entries now ("" if it takes them): disabled,
    paused, every entry stopped (E), or blocked by a P&L rule or a daily loss limit of the
    book or the strategy."""
    if strategy.status == StrategyStatus.DISABLED:
        return "it is disabled in the settings"
    if strategy.status == StrategyStatus.PAUSED:
        return "it is paused; resume it first (p)"
    if snap is not None and snap.entries_stopped:
        return "entries are stopped for the whole book; resume them first (E)"
    for scope in snap.portfolio if snap else ():  # the book first
        if scope.blocked and scope.scope in (BOOK, strategy.id):
            return f"entries are blocked: {scope.blocked}"
    return ""


def strategy_details(app: App, strategy: StrategyView) -> None:
    """The strategy's configuration and what an entry would risk now (a modal)."""
    if isinstance(app.screen, StrategyDetailsScreen):
        return
    engine = _host(app).engine
    app.push_screen(StrategyDetailsScreen(strategy, engine.config.strategies.get(strategy.id),
                                          lambda: engine.risk_preview(strategy.id)))


def _how(engine: EngineCommands, strategy_id: str) -> str:
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

    app.push_screen(EditLevelsScreen(pos, lambda **changes: engine.edit_levels(pos.group_id, leg_id=pos.leg_id,
                                                                               **changes),
                                     now=engine.clock.now), done)


def _signal_label(signal: QueuedSignalView) -> str:
    """"#3 scalp BTCUSDT 1h long, signal 100.00" for a confirmation."""
    tf = f" {signal.timeframe}" if signal.timeframe else ""
    return (f"#{signal.id} {signal.strategy_id} {signal.symbol}{tf} {side_word(signal.side)}, "
            f"signal {px(signal.price)}")


def promote_signal(app: App, signal: QueuedSignalView) -> None:
    """Put a queued signal first in line for the next free slot (no confirmation: it opens nothing)."""
    report(app, _host(app).engine.promote_signal(signal.id))


def remove_signal(app: App, signal: QueuedSignalView) -> None:
    engine = _host(app).engine
    confirm_then(app, f"Remove queued signal {_signal_label(signal)} from the queue? It will not be entered.",
                 lambda: engine.remove_signal(signal.id), title="Remove signal")


def force_add_signal(app: App, signal: QueuedSignalView) -> None:
    """Enter a queued signal now, beyond the pool's size."""
    host = _host(app)
    engine, snap = host.engine, host.latest_snapshot
    used, total = (snap.pool_used, snap.pool_total) if snap else (0, engine.config.engine.max_open_positions)
    pool = f"The pool is full ({used}/{total} slots used)" if used >= total else f"{used}/{total} slots are used"
    confirm_then(
        app, f"{pool}. Enter {_signal_label(signal)} now {_how(engine, signal.strategy_id)}?\n"
             f"This opens position {used + 1} of a pool of {total}.",
        lambda: engine.force_add(signal.id), title="Force-add beyond the pool",
    )


def _loser_label(loser: RiskView) -> str:
    """"#4 grid BTCUSDT (loss -30.00, -3.00%)" for a confirmation."""
    return f"#{loser.group_id} {loser.strategy_id} {loser.symbol} (loss {money(loser.pnl)}, {pct(-loser.loss_pct)})"


def risk_run(app: App, loser: RiskView) -> None:
    """Run a loser's offset plan now, whatever its eligibility: it closes positions, so confirm."""
    engine = _host(app).engine
    if loser.covers:
        outcome = f"{loser.plan}."
    else:
        outcome = (f"The winners cover {loser.covered:,.2f} of the {loser.required:,.2f} required: the book realizes "
                   f"{money(loser.covered - loser.required)} net.")
    waiting = [name for name, passed, _ in loser.checks if not passed]
    if waiting:
        outcome += f"\nIt is not eligible ({', '.join(waiting)}); it runs anyway."
    closes = f"the winners' parts, then all of #{loser.group_id}," if loser.steps else f"all of #{loser.group_id}"
    confirm_then(app, f"Run the risk plan of {_loser_label(loser)} now?\n{outcome}\nThis closes {closes} at market.",
                 lambda: engine.risk_run(loser.group_id), title="Run risk plan")


def risk_skip(app: App, loser: RiskView) -> None:
    """Skip once, or undo the skip (nothing closes: no confirmation)."""
    report(app, _host(app).engine.risk_skip(loser.group_id))


def risk_block(app: App, loser: RiskView) -> None:
    """Block, or unblock (nothing closes: no confirmation)."""
    report(app, _host(app).engine.risk_block(loser.group_id))
