"""No status, purpose, exit reason or hold is written as a string literal (issue 14, point 2):
services/, screens/ and tui_trader/ compare and assign them as their enums' members, so a
misspelt one fails at import instead of never matching. Read from the source (AST): a literal
that is one of the enum values of a field, compared (==, !=, is, in, not in a tuple, set or
list of literals) with an attribute, a row["field"] or a keyword of that name, or assigned to
one (also as a keyword or a dict entry), fails with its file:line."""

from __future__ import annotations

import ast
from enum import Enum
from pathlib import Path

import pytest

from services.domain import (
    ExitReason, GroupStatus, LegStatus, QueuedStatus, RiskHold, RunStatus, SignalStatus,
)
from services.orders import OrderPurpose, OrderStatus
from services.store.inboxes import InboxStatus
from services.views import LayerState, PositionStatus, StrategyStatus, TriggerKind

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("services", "screens", "tui_trader")


def values(*enums: type[Enum]) -> frozenset[str]:
    return frozenset(m.value for e in enums for m in e)


FIELDS = {
    "status": values(OrderStatus, RunStatus, GroupStatus, LegStatus, SignalStatus, QueuedStatus, InboxStatus,
                     PositionStatus, StrategyStatus),
    "purpose": values(OrderPurpose),
    "exit_reason": values(ExitReason),
    "pending_exit": values(ExitReason),  # a group's exit decided and not yet filled
    "exit_pending": values(ExitReason),  # the same on a PositionView
    "risk_hold": values(RiskHold),
    "hold": values(RiskHold),  # RiskView's
    "state": values(LayerState),  # GridLegView's
    "kind": values(TriggerKind),  # TriggerView's
}
"""Field name -> the values its enums give it."""


def _field(node: ast.expr) -> str | None:
    """The field a node reads: x.status, row["status"]."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value
    return None


def _literals(node: ast.expr | None) -> list[str]:
    """The string literals a value can be: a constant, either branch of a conditional, an
    operand of `or` / `and`, the items of a tuple, set or list."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literals(node.body) + _literals(node.orelse)
    if isinstance(node, ast.BoolOp):
        return [v for operand in node.values for v in _literals(operand)]
    if isinstance(node, (ast.Tuple, ast.Set, ast.List)):
        return [v for item in node.elts for v in _literals(item)]
    return []


def _assigned(target: ast.expr, value: ast.expr) -> list[tuple[str | None, ast.expr]]:
    """(field, value) of each target of an assignment, a tuple unpacked item by item."""
    if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
        return [pair for t, v in zip(target.elts, value.elts) for pair in _assigned(t, v)]
    return [(_field(target), value)]


def literal_fields(source: str) -> list[tuple[int, str, str]]:
    """(line, field, literal) of each enum value written as a literal for its field."""
    found: list[tuple[int, str, str]] = []

    def check(line: int, field: str | None, value: ast.expr | None) -> None:
        if field in FIELDS:
            found.extend((line, field, v) for v in _literals(value) if v in FIELDS[field])

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, left, right in zip(node.ops, operands, operands[1:]):
                if isinstance(op, (ast.Eq, ast.NotEq, ast.Is, ast.IsNot, ast.In, ast.NotIn)):
                    check(node.lineno, _field(left), right)
                    if not isinstance(op, (ast.In, ast.NotIn)):
                        check(node.lineno, _field(right), left)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for field, value in _assigned(target, node.value):
                    check(node.lineno, field, value)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            check(node.lineno, _field(node.target), node.value)
        elif isinstance(node, ast.keyword):
            check(node.value.lineno, node.arg, node.value)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    check(key.lineno, key.value, value)
    return found


def test_no_status_purpose_exit_reason_or_hold_is_a_string_literal():
    where = [f"{path.relative_to(ROOT)}:{line}: {field} {literal!r}"
             for folder in SOURCES for path in sorted((ROOT / folder).rglob("*.py"))
             for line, field, literal in sorted(literal_fields(path.read_text(encoding="utf-8")))]
    assert not where, "name these by their enum's member:\n" + "\n".join(where)


@pytest.mark.parametrize("source", [
    'if leg.status == "open": pass',
    'if "open" != leg.status: pass',
    'ok = order.status in ("filled", "cancelled")',
    'ok = row["status"] not in {"pending"}',
    'group.status = "entering" if entering else "open"',
    'leg.status, leg.exit_reason = "cancelled", why',
    'group.pending_exit = reason or "manual"',
    'update(table).values(status="cancelled")',
    'post({"purpose": "exit"})',
    'if r.hold == "skipped": pass',
])
def test_a_literal_is_found(source):
    assert literal_fields(source), source


@pytest.mark.parametrize("source", [
    'if leg.status == LegStatus.OPEN: pass',
    'if engine.state == "running": pass',  # not a field with an enum here
    'if status == "open": pass',  # a local name: the module's own business
    'leg.exit_reason = f"rejected: {why}"',  # free text, not a member's value
    'if signal.kind == "exit": pass',  # a signal's kind, no trigger kind
])
def test_what_is_not_a_literal_of_an_enum_field_is_left_alone(source):
    assert not literal_fields(source), source
