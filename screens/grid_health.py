"""A DCA grid on the Positions screen: its row (the average entry, the aggregate take-profit,
how many layers filled), one row per layer of every pyramid when it is open, the detail of
either, and what x asks before it exits the grid."""

from __future__ import annotations

from collections import Counter

from services.views import GridLegView, LayerState, PositionStatus, TriggerView

from .format import (
    DIM, PROFIT, cell, duration, money, num, pct, pnl_cell, pnl_pct_cell, px, qty, side_word, signed_style, sparkline,
)
from .position_health import (
    TREND_WIDTH, Group, Row, away_text, head_cells, leg_cells, legs_triggers, levels_text, next_exit_cell, state_text,
    status_cell, sub_head_cells,
)

LAYER_STYLE = {LayerState.PENDING: DIM, LayerState.FILLED: "", LayerState.TP_HIT: PROFIT, LayerState.CLOSED: DIM,
               LayerState.CANCELLED: "dim strike"}
"""A layer's state as the table colours it: what rests is dim, what took profit green."""

RESTING = "resting"
"""The status of a grid with no open layer, only resting orders."""


def layer_name(lg: GridLegView) -> str:
    """"P0 L1": its pyramid (0 the first grid) and its layer, counted from 1."""
    return f"P{lg.pyramid} L{lg.layer + 1}"


def toward(g: Group, level: float | None, kind: str) -> TriggerView | None:
    """How far the grid's mark is from `level` (positive: not reached): a take-profit
    ("target") lies in the trade's favour, a resting layer ("fill") against it."""
    if level is None or not g.legs:
        return None
    mark = g.legs[0].mark  # every layer is on the grid's one symbol
    d = 1 if g.grid.side == "buy" else -1
    dist = (level - mark) * d if kind == "target" else (mark - level) * d
    return TriggerView(g.id, g.grid.symbol, kind, level, dist, dist / mark * 100.0 if mark else None)


def grid_tp(g: Group) -> float | None:
    """The aggregate take-profit; in per_leg mode the nearest of the open layers' own."""
    grid = g.grid
    if grid.agg_tp is not None:
        return grid.agg_tp
    targets = [p.target for p in g.legs if p.target is not None]
    if not targets:
        return None
    return min(targets) if grid.side == "buy" else max(targets)


def filled_count(g: Group) -> int:
    """Layers that filled (open, or closed since)."""
    return sum(lg.state not in (LayerState.PENDING, LayerState.CANCELLED) for lg in g.grid.legs)


# == cells ===================================================================================


def grid_cells(row: Row, now: float) -> tuple:
    """A grid's own row, or (`row.layer` set) one of its layers."""
    if row.layer is not None:
        return layer_cells(row, now)
    g, grid = row.group, row.group.grid
    p = g.legs[0] if g.legs else None  # the oldest open layer: the longest mark history
    triggers = legs_triggers(g.legs, now)
    agg = toward(g, grid.agg_tp, "target")
    blank = num("")
    symbol = f"{'▾' if row.expanded else '▸'} {grid.symbol} ▦{filled_count(g)}/{len(grid.legs)}"
    status = status_cell(g.status) if g.legs else cell(RESTING, "cyan")
    return (
        *head_cells(row), cell(symbol), cell(g.side), status, pnl_cell(g.pnl), pnl_pct_cell(g.pnl_pct),
        num(px(p.mark, grid.symbol)) if p else blank,
        cell(sparkline(p.marks, TREND_WIDTH) if p else "", signed_style(g.pnl, 0.005)),
        next_exit_cell(triggers + [agg] if agg else triggers), num(duration(now - g.opened_at)),
        num(qty(sum(leg.qty for leg in g.legs))), num(px(grid.avg_entry, grid.symbol)), blank,
        num(px(grid_tp(g), grid.symbol)), blank,
    )


def layer_cells(row: Row, now: float) -> tuple:
    lg, p = row.layer, row.leg
    weight = f" ×{lg.weight:g}" if lg.weight is not None else ""
    sym = row.group.grid.symbol
    head = sub_head_cells(f"{layer_name(lg)}{weight} @{px(lg.price, sym)}")  # its price too: Entry is far right
    state = cell(lg.state, LAYER_STYLE.get(lg.state, ""))
    size = num(f"{qty(lg.filled_qty)}/{qty(lg.qty)}")
    if p is not None:  # filled: its live health, as a basket's leg
        return *head, *leg_cells(p, now, state, size)
    closed = lg.state in (LayerState.TP_HIT, LayerState.CLOSED)
    cost = lg.price * lg.filled_qty
    blank = num("")
    return (
        *head, cell(side_word(row.group.grid.side)), state, pnl_cell(lg.realized) if closed else blank,
        pnl_pct_cell(lg.realized / cost * 100.0) if closed and cost else blank, blank, cell(""), cell(""), blank,
        size, num(px(lg.price, sym)), blank, num(px(lg.tp_target, sym)), blank,
    )


# == the detail line and the exit question ===================================================


def grid_detail(g: Group, now: float, expanded: bool) -> str:
    grid = g.grid
    states = Counter(lg.state for lg in grid.legs)
    realized = sum(lg.realized for lg in grid.legs)
    parts = [f"#{g.id} {g.strategy_id} {g.side} {qty(sum(p.qty for p in g.legs))} {grid.symbol}",
             f"DCA grid, TP {grid.tp_mode}"]
    if grid.avg_entry is not None:
        mark = f" → mark {px(g.legs[0].mark, grid.symbol)}" if g.legs else ""
        parts.append(f"avg entry {px(grid.avg_entry, grid.symbol)}{mark}")
    else:
        parts.append("no filled layer open")
    if grid.agg_tp is not None:
        parts.append(f"aggregate TP {px(grid.agg_tp, grid.symbol)}{away_text(toward(g, grid.agg_tp, 'target'))}")
    else:
        nearest = grid_tp(g)
        parts.append("no aggregate TP" + (
            f", nearest layer TP {px(nearest, grid.symbol)}{away_text(toward(g, nearest, 'target'))}"
            if nearest is not None else ""))
    parts.append(f"pyramids {grid.pyramids} of {grid.max_pyramids}")
    layers = f"layers filled {filled_count(g)} of {len(grid.legs)}, {states[LayerState.PENDING]} resting"
    parts.append(layers + (f", {states[LayerState.TP_HIT]} took profit" if states[LayerState.TP_HIT] else ""))
    parts.append(f"P&L {money(g.pnl)} ({pct(g.pnl_pct)}): realized {money(realized)}, open {money(g.pnl - realized)}")
    if g.status != PositionStatus.OPEN:  # the table says OPEN; the detail has no room to spare at 80 columns
        parts.append(state_text(g.status, g.legs) if g.legs else f"{RESTING}: no layer is open, its orders wait to fill")
    parts.append("enter hides the layers" if expanded else "enter shows the layers")
    return " · ".join(parts)


def _weight_text(row: Row) -> str:
    """"weight 2 of 4": its share of its pyramid's grid."""
    lg = row.layer
    if lg.weight is None:
        return ""
    total = sum(other.weight or 0.0 for other in row.group.grid.legs if other.pyramid == lg.pyramid)
    return f"weight {lg.weight:g} of {total:g}"


def layer_detail(row: Row, now: float) -> str:
    """One layer in full: what it is, its state, and its own take-profit and how far it is."""
    g, lg, p = row.group, row.layer, row.leg
    grid = g.grid
    parts = [f"#{g.id} {g.strategy_id} {grid.symbol} layer {layer_name(lg)} (leg {lg.leg_id}): {lg.state}"]
    if p is not None:
        parts += [f"{side_word(p.side)} {qty(p.qty)} at {px(p.entry, grid.symbol)} → mark {px(p.mark, grid.symbol)}",
                  f"P&L {money(p.pnl)} ({pct(p.pnl_pct)}), fees {p.fees:,.2f}", f"age {duration(now - p.opened_at)}"]
        if p.status != PositionStatus.OPEN:
            parts.append(state_text(p.status, (p,)))
        parts.append(levels_text(p, now))
        if grid.agg_tp is not None:
            parts.append(f"the grid's aggregate TP {px(grid.agg_tp, grid.symbol)} closes it too")
    elif lg.state == LayerState.PENDING:
        away = away_text(toward(g, lg.price, "fill"))
        parts += [f"resting limit {grid.side} {qty(lg.qty)} at {px(lg.price, grid.symbol)}{away}",
                  "it joins the aggregate TP once filled" if grid.tp_mode == "aggregate"
                  else "its own TP is set from its fill"]
    elif lg.state == LayerState.CANCELLED:
        parts.append(f"its limit {grid.side} {qty(lg.qty)} at {px(lg.price, grid.symbol)} never filled")
    else:
        took = f", took profit at its TP {px(lg.tp_target, grid.symbol)}" if lg.state == LayerState.TP_HIT else ""
        parts += [f"filled {qty(lg.filled_qty)} at {px(lg.price, grid.symbol)}{took}", f"realized {money(lg.realized)}"]
    weight = _weight_text(row)
    if weight:
        parts.insert(1, weight)
    return " · ".join(parts)


def grid_exit_question(g: Group) -> str:
    """What exiting the grid does: its filled layers close at market, its resting ones are cancelled."""
    grid = g.grid
    resting = sum(lg.state == LayerState.PENDING for lg in grid.legs)
    steps = []
    if g.legs:
        n = len(g.legs)
        steps.append(f"close {n} filled layer{'s' if n != 1 else ''} "
                     f"({qty(sum(p.qty for p in g.legs))} {grid.symbol}) at market")
    if resting:
        steps.append(f"cancel {resting} resting layer{'s' if resting != 1 else ''}")
    return f"Exit grid #{g.id} {g.strategy_id} {grid.symbol}: {' and '.join(steps) or 'close it'}?\nP&L {money(g.pnl)}"
