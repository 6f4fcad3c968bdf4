"""Position plans: what kind of position a group is, and the decisions that depend on its kind.

A group is one leg (SinglePlan), a basket of symbols entered leg by leg (BasketPlan), or a DCA
grid (GridPlan): its first layer is entered like any entry, the others rest as limit orders
measured from that fill, each layer takes profit on its own, on the grid's average entry or
both, and pyramids add further grids. The engine's components ask the group's plan what an
entry sends next, what a fill means, what an exit cancels, how the trade reads, whether the
group is done and what it holds; they place, cancel and record. Option structures will be one
more plan. The grid arithmetic is services.rules.dca's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from .domain import ExitReason, LegStatus
from .rules.dca import LayerPlan, grid, layer_problem, tp_price
from .views import GridLegView, GridView, LayerState

if TYPE_CHECKING:
    from .config import DcaConfig
    from .domain import Group, Leg
    from .rules.precision import Rules


class PositionPlan(Protocol):
    kind: str  # single | basket | grid
    agg_tp: float | None  # a take-profit over the whole group (a grid's, over its average entry)

    def next_leg(self) -> tuple[str, float] | None:
        """The next leg to enter, (symbol, qty), taken off the plan; None when there is none."""

    @property
    def to_enter(self) -> bool:
        """Whether legs are still to be entered after the one entering now."""

    def give_up(self) -> None:
        """The entry failed: nothing more is entered."""

    def opened(self, group: Group, leg: Leg, rules: Rules | None) -> list[LayerPlan]:
        """A leg filled: what that means for its levels and the group's; the layers to place
        from this fill as resting orders."""

    def grew(self, group: Group, rules: Rules | None) -> None:
        """A further fill of a leg's entry order: what follows its new average."""

    def completed(self, group: Group, now: float) -> bool:
        """Whether every part the plan placed has now filled in full (noted: the risk engine's
        timer starts)."""

    def closes_alone(self, reason: str) -> bool:
        """Whether a leg's own exit for this reason closes that leg only, not the group."""

    def leg_closed(self, group: Group, rules: Rules | None) -> bool:
        """A leg closed (a grid's aggregate follows the layers that stay): whether the funds the
        group holds follow it now, or only when the group closes."""

    def resting(self, group: Group) -> list[Leg]:
        """The legs whose entry orders rest: an exit of the group cancels them."""

    def round_trip(self, closed: list[Leg]) -> tuple[float, float, float]:
        """(qty, entry, exit price) of the trade the group's exit closed, from the legs it closed."""

    def done(self, group: Group) -> bool:
        """Whether nothing keeps the group going (no open leg; a grid's resting layers, unless it
        exits): it closes."""

    def held(self, group: Group) -> float:
        """The funds the group holds."""

    def fullness(self, group: Group) -> dict[str, Any]:
        """How full the position is, as the risk engine's eligibility reads it (the fields of
        services.rules.risk_plan.Position)."""

    def which_leg(self, legs: list[Leg]) -> str:
        """What the group is, for a level edit that must say which of these open legs."""

    def view(self, group: Group) -> GridView | None:
        """The kind's own view (a grid's layers), beside the group's legs."""

    def columns(self) -> dict[str, Any]:
        """The group's stored columns that the plan keeps."""


class SinglePlan:
    """One leg on one symbol."""

    __slots__ = ()
    kind = "single"
    agg_tp = None

    def next_leg(self) -> tuple[str, float] | None:
        return None

    @property
    def to_enter(self) -> bool:
        return False

    def give_up(self) -> None:
        pass

    def opened(self, group: Group, leg: Leg, rules: Rules | None) -> list[LayerPlan]:
        return []

    def grew(self, group: Group, rules: Rules | None) -> None:
        pass

    def completed(self, group: Group, now: float) -> bool:
        return False

    def closes_alone(self, reason: str) -> bool:
        return False

    def leg_closed(self, group: Group, rules: Rules | None) -> bool:
        return False  # it holds what it entered until it closes

    def resting(self, group: Group) -> list[Leg]:
        return []

    def round_trip(self, closed: list[Leg]) -> tuple[float, float, float]:
        leg = closed[0]  # a basket's round trip is its first leg's, as the history shows it
        return leg.qty, leg.entry, leg.exit_price

    def done(self, group: Group) -> bool:
        return not any(leg.status == LegStatus.OPEN for leg in group.legs)

    def held(self, group: Group) -> float:
        """Its open legs, and the resting orders of its pending layers."""
        return sum(leg.entry * leg.qty for leg in group.legs if leg.status in (LegStatus.OPEN, LegStatus.PENDING))

    def fullness(self, group: Group) -> dict[str, Any]:
        # not a grid: "full" from its entry
        return {"dca_submitted_at": group.opened_at, "dca_filled_at": group.opened_at}

    def which_leg(self, legs: list[Leg]) -> str:
        return f"a basket of {len(legs)} legs; say which leg to edit ({', '.join(f'{leg.id} {leg.symbol}' for leg in legs)})"

    def view(self, group: Group) -> GridView | None:
        return None

    def columns(self) -> dict[str, Any]:
        return {"tp_mode": "", "agg_tp": None, "capital": 0.0, "pyramids": 0, "dca_submitted_at": None,
                "dca_filled_at": None, "fifth_pyramid_at": None}


class BasketPlan(SinglePlan):
    """One position over several symbols, entered leg by leg; it exits as a whole."""

    __slots__ = ("rest",)
    kind = "basket"

    def __init__(self, rest: list[tuple[str, float]]) -> None:
        self.rest = rest  # the legs still to enter, in order: (symbol, qty)

    def next_leg(self) -> tuple[str, float] | None:
        return self.rest.pop(0) if self.rest else None

    @property
    def to_enter(self) -> bool:
        return bool(self.rest)

    def give_up(self) -> None:
        self.rest = []


class GridPlan(SinglePlan):
    """A DCA grid on one symbol: its layers are legs, pending until their resting order fills."""

    __slots__ = ("tp_mode", "agg_tp", "capital", "dca", "pyramids", "submitted_at", "filled_at", "fifth_pyramid_at")
    kind = "grid"

    def __init__(self, tp_mode: str, capital: float, dca: DcaConfig | None) -> None:
        self.tp_mode = tp_mode  # per_leg | aggregate | hybrid
        self.agg_tp: float | None = None  # the aggregate take-profit over the average entry, when armed
        self.capital = capital  # what each grid (the first and every pyramid) is sized from
        self.dca = dca  # its strategy's grid (None: the strategy is gone from the settings)
        self.pyramids = 0  # grids added by later entry signals
        self.submitted_at: float | None = None  # when every layer's order had been placed
        self.filled_at: float | None = None  # when every layer had filled
        self.fifth_pyramid_at: float | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any], dca: DcaConfig | None) -> "GridPlan":
        plan = cls(row["tp_mode"], row["capital"], dca)
        plan.agg_tp, plan.pyramids, plan.fifth_pyramid_at = row["agg_tp"], row["pyramids"], row["fifth_pyramid_at"]
        plan.submitted_at, plan.filled_at = row["dca_submitted_at"], row["dca_filled_at"]
        return plan

    def opened(self, group: Group, leg: Leg, rules: Rules | None) -> list[LayerPlan]:
        """A layer filled: its own take-profit and the group's aggregate one; the first layer of
        the first grid places the others from P0 = this fill."""
        rest: list[LayerPlan] = []
        if leg.layer is None:  # the first layer, entered like any entry
            first, *rest = layers_at(self.dca, group.side, leg.entry, self.capital, rules)
            leg.layer, leg.weight, leg.tp_pct = 0, first.weight, first.tp_pct
        tick = rules.tick_size if rules else None
        leg.target = tp_price(leg.entry, leg.tp_pct, group.side, tick) if self.tp_mode != "aggregate" else None
        self.rearm(group, rules)
        return rest

    def rearm(self, group: Group, rules: Rules | None) -> None:
        """The aggregate take-profit follows the average entry of the open layers (a layer whose
        own take-profit is working has left it)."""
        if self.tp_mode in ("aggregate", "hybrid") and self.dca is not None:
            legs = [lg for lg in group.open_legs() if lg.exit_order_id is None]
            qty = sum(lg.qty for lg in legs)
            avg = sum(lg.entry * lg.qty for lg in legs) / qty if qty else None
            self.agg_tp = tp_price(avg, self.dca.tp_pct, group.side, rules.tick_size if rules else None) if avg else None

    def placed(self, now: float) -> None:
        """Layers were placed: the grid is full again once they fill."""
        self.submitted_at, self.filled_at = now, None

    def add_pyramid(self, now: float) -> int:
        self.pyramids += 1
        if self.pyramids == 5:
            self.fifth_pyramid_at = now
        return self.pyramids

    def grew(self, group: Group, rules: Rules | None) -> None:
        self.rearm(group, rules)

    def completed(self, group: Group, now: float) -> bool:
        """None resting, none with the rest of its order still working."""
        if group.entry_order_id is not None or any(lg.status == LegStatus.PENDING or lg.entry_order_id is not None
                                                   for lg in group.legs):
            return False
        self.filled_at = now
        return True

    def closes_alone(self, reason: str) -> bool:
        return reason == ExitReason.TARGET  # a layer's own take-profit closes that layer only

    def leg_closed(self, group: Group, rules: Rules | None) -> bool:
        self.rearm(group, rules)  # a layer's own take-profit leaves the aggregate
        return True

    def resting(self, group: Group) -> list[Leg]:
        return [lg for lg in group.legs if lg.status == LegStatus.PENDING or lg.entry_order_id is not None]

    def round_trip(self, closed: list[Leg]) -> tuple[float, float, float]:
        """The layers it closed, at average prices."""
        qty = sum(lg.qty for lg in closed)
        return qty, sum(lg.entry * lg.qty for lg in closed) / qty, sum(lg.exit_price * lg.qty for lg in closed) / qty

    def done(self, group: Group) -> bool:
        # layers still resting after their own take-profits keep it going, unless it exits
        return not any(lg.status == LegStatus.OPEN or (lg.status == LegStatus.PENDING and not group.pending_exit)
                       for lg in group.legs)

    def fullness(self, group: Group) -> dict[str, Any]:
        layers = [lg for lg in group.legs if lg.layer is not None]
        return {"pyramids": self.pyramids, "max_pyramids": self.dca.max_pyramids if self.dca is not None else 0,
                "layers_total": len(layers), "layers_submitted": sum(lg.status != LegStatus.CANCELLED for lg in layers),
                "layers_filled": sum(lg.status in (LegStatus.OPEN, LegStatus.CLOSED) for lg in layers),
                "dca_submitted_at": self.submitted_at, "dca_filled_at": self.filled_at,
                "fifth_pyramid_at": self.fifth_pyramid_at}

    def which_leg(self, legs: list[Leg]) -> str:
        return (f"a DCA grid of {len(legs)} open layers; say which layer to edit "
                f"({', '.join(f'{leg.id} {layer_name(leg)}' for leg in legs)})")

    def view(self, group: Group) -> GridView:
        legs = sorted((lg for lg in group.legs if lg.layer is not None), key=lambda lg: (lg.pyramid, lg.layer))
        return GridView(group.id, group.strategy_id, group.symbol, group.side, self.tp_mode, group.avg_entry(),
                        self.agg_tp, self.pyramids, self.dca.max_pyramids if self.dca is not None else self.pyramids,
                        tuple(GridLegView(lg.id, lg.pyramid, lg.layer, lg.entry, lg.weight, lg.target, lg.qty,
                                          lg.qty if lg.status in (LegStatus.OPEN, LegStatus.CLOSED) else 0.0, _layer_state(lg),
                                          lg.realized_pnl) for lg in legs), group.opened_at)

    def columns(self) -> dict[str, Any]:
        return {"tp_mode": self.tp_mode, "agg_tp": self.agg_tp, "capital": self.capital, "pyramids": self.pyramids,
                "dca_submitted_at": self.submitted_at, "dca_filled_at": self.filled_at,
                "fifth_pyramid_at": self.fifth_pyramid_at}


def layers_at(dca: DcaConfig, side: str, p0: float, capital: float, rules: Rules | None) -> list[LayerPlan]:
    """Every layer of a grid entered at p0 with this much capital, on the symbol's tick and step."""
    return grid(dca.layers, side, p0, capital, rules.tick_size if rules else None, rules.lot_step if rules else None)


def layers_problem(plans: list[LayerPlan], rules: Rules | None) -> str:
    """Why the first of these layers that cannot be placed cannot ("" when all can)."""
    min_notional, step = (rules.min_notional, rules.lot_step) if rules else (0.0, None)
    return next((p for plan in plans if (p := layer_problem(plan, min_notional, step))), "")


def layer_name(leg: Leg) -> str:
    return f"layer {(leg.layer or 0) + 1}" + (f" of pyramid {leg.pyramid}" if leg.pyramid else "")


def _layer_state(leg: Leg) -> LayerState:
    if leg.status == LegStatus.OPEN:
        return LayerState.FILLED
    if leg.status == LegStatus.CLOSED:
        return LayerState.TP_HIT if leg.exit_reason == ExitReason.TARGET else LayerState.CLOSED
    return LayerState(leg.status)  # pending | cancelled
