"""One list of event categories (services/event_categories.py): every category the code in
services/ raises an event in is on it, so the Logs screen's filter and `tui-trader logs`
offer it. Read from the source, every .py file under services/ at any depth."""

from __future__ import annotations

import ast
from pathlib import Path

from services.event_categories import CATEGORIES, EventCategory

SERVICES = Path(__file__).resolve().parent.parent / "services"
RAISERS = {"_event", "event", "note"}
"""Names of the callables that raise an event: level first, category second (or category=)."""


def category_literals(source: str) -> list[tuple[int, str]]:
    """(line, category) of each string literal passed as the category of an event call."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name not in RAISERS:
            continue
        args = node.args[1:2] + [k.value for k in node.keywords if k.arg == "category"]
        found += [(node.lineno, a.value) for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return found


def raised_categories() -> dict[str, list[str]]:
    """category -> where it is raised ("services/x.py:12")."""
    where: dict[str, list[str]] = {}
    for path in sorted(SERVICES.rglob("*.py")):
        for line, category in category_literals(path.read_text(encoding="utf-8")):
            where.setdefault(category, []).append(f"{path.relative_to(SERVICES.parent)}:{line}")
    return where


def test_every_category_raised_in_services_is_listed():
    raised = raised_categories()
    assert len(raised) >= 10, f"found only {sorted(raised)}: has the engine's event method been renamed? see RAISERS"
    missing = {c: places for c, places in raised.items() if c not in CATEGORIES}
    assert not missing, "categories raised but not in services/event_categories.py: " + "; ".join(
        f"{c!r} at {', '.join(places)}" for c, places in sorted(missing.items()))


def test_the_scan_finds_categories_however_the_call_is_written():
    source = '''
self._event("info", "exit", "closed", group)
self.journal.event("warning",
                   "feed", "down")
event("info", "queue", "queued")
eng.note("warning", "signal", "rejected")
self._event(level="info", category="risk", message="x")
self._event("info", EventCategory.FILL, "entered")  # not a literal: checked by Python itself
print("info", "not an event")
'''
    assert category_literals(source) == [(2, "exit"), (3, "feed"), (5, "queue"), (6, "signal"), (7, "risk")]


def test_the_list_is_the_enum_and_each_category_is_documented():
    assert CATEGORIES == tuple(sorted(CATEGORIES)) == tuple(c.value for c in EventCategory)
    assert EventCategory.EXIT == "exit" and f"{EventCategory.EXIT}" == "exit"  # compares and prints as the stored text
    source = (SERVICES / "event_categories.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "EventCategory"]
    body = cls.body
    documented = {body[i].targets[0].id for i in range(len(body) - 1)
                  if isinstance(body[i], ast.Assign) and isinstance(body[i + 1], ast.Expr)
                  and isinstance(body[i + 1].value, ast.Constant)}
    assert documented == {c.name for c in EventCategory}
