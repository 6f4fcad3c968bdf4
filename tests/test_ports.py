"""The adapters and the engine satisfy their ports (services/ports.py), checked by reflection:
every member of the protocol is there, a method with parameters of the same names and kinds
(and a default where the port has one) and async where the port's is. A rename on either side
fails here, not in a screen at run time."""

from __future__ import annotations

import inspect
from typing import Protocol

import pytest

from services import ports
from services.adapters.paper.execution import PaperExecution
from services.clock import FakeClock, RealClock
from services.engine import Engine
from tui_trader.wiring import build_engine
from services.adapters.simulated.feed import SimulatedFeed
from services.market import QuoteBook
from services.replay import ReplayFeed, ReplayStore
from services.rules.precision import SettingsRules
from services.store import MemoryStore, SqlStore
from tests.conftest import T0, config

P = inspect.Parameter
# What each kind of parameter in a port may be in an implementation.
COMPATIBLE_KINDS = {
    P.POSITIONAL_ONLY: {P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD},
    P.POSITIONAL_OR_KEYWORD: {P.POSITIONAL_OR_KEYWORD},
    P.KEYWORD_ONLY: {P.KEYWORD_ONLY, P.POSITIONAL_OR_KEYWORD},
    P.VAR_POSITIONAL: {P.VAR_POSITIONAL},
    P.VAR_KEYWORD: {P.VAR_KEYWORD},
}


def members(port: type) -> dict[str, object]:
    """A protocol's members, its base protocols' included: name -> the function or property
    (None for an attribute declared by annotation only)."""
    found: dict[str, object] = {}
    for cls in reversed(port.__mro__):
        if cls is Protocol or not getattr(cls, "_is_protocol", False):
            continue
        found.update((name, None) for name in vars(cls).get("__annotations__", {}))
        found.update((name, value) for name, value in vars(cls).items() if not name.startswith("_"))
    return found


def signature_problems(name: str, wanted: inspect.Signature, got: inspect.Signature) -> list[str]:
    have = got.parameters
    problems = []
    for p in wanted.parameters.values():
        if p.name == "self":
            continue
        q = have.get(p.name)
        if q is None:
            problems.append(f"{name}: no parameter {p.name!r}")
        elif q.kind not in COMPATIBLE_KINDS[p.kind]:
            problems.append(f"{name}: {p.name!r} is {q.kind.description}, the port's is {p.kind.description}")
        elif p.default is not P.empty and q.default is P.empty:
            problems.append(f"{name}: {p.name!r} needs a default")
    positional = (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)
    order = [p.name for p in wanted.parameters.values() if p.kind in positional and p.name != "self"]
    if order != [q.name for q in have.values() if q.kind in positional][:len(order)]:
        problems.append(f"{name}: positional parameters are not in the port's order {order}")
    problems += [f"{name}: {q.name!r} is not in the port and has no default" for q in have.values()
                 if q.name not in wanted.parameters and q.default is P.empty
                 and q.kind not in (P.VAR_POSITIONAL, P.VAR_KEYWORD)]
    return problems


def unmet(port: type, impl: object) -> list[str]:
    """What `impl` (an instance) lacks or has differently from `port`; empty when it satisfies it."""
    problems = []
    for name, member in members(port).items():
        if not hasattr(impl, name):
            problems.append(f"{name}: missing")
            continue
        if not inspect.isfunction(member):
            continue  # an attribute or property: being there is what the port asks
        method = getattr(impl, name)
        if not callable(method):
            problems.append(f"{name}: not a method")
            continue
        if inspect.iscoroutinefunction(member) != inspect.iscoroutinefunction(method):
            problems.append(f"{name}: {'not ' if inspect.iscoroutinefunction(member) else ''}async, unlike the port")
        problems += signature_problems(name, inspect.signature(member), inspect.signature(method))
    return problems


def engine() -> Engine:
    return build_engine(config(), FakeClock(T0), MemoryStore())


IMPLEMENTATIONS = [  # port, what implements it, an instance of it
    (ports.EngineCommands, "Engine", engine),
    (ports.EngineService, "Engine", engine),
    (ports.Store, "MemoryStore", MemoryStore),
    (ports.Store, "SqlStore", lambda: SqlStore("sqlite://")),
    (ports.Store, "ReplayStore", ReplayStore),
    (ports.Feed, "SimulatedFeed", lambda: SimulatedFeed(config().symbols, FakeClock(T0), 7)),
    (ports.Feed, "ReplayFeed", lambda: ReplayFeed(config().symbols)),
    (ports.ExecutionClient, "PaperExecution", lambda: PaperExecution(config().paper, QuoteBook(5.0), FakeClock(T0))),
    (ports.InstrumentProvider, "SettingsRules", lambda: SettingsRules(config().symbols)),
    (ports.Clock, "FakeClock", FakeClock),
    (ports.Clock, "RealClock", RealClock),
]


@pytest.mark.parametrize(("port", "make"), [pytest.param(port, make, id=f"{impl} satisfies {port.__name__}")
                                            for port, impl, make in IMPLEMENTATIONS])
def test_the_implementation_satisfies_its_port(port, make):
    assert unmet(port, make()) == []


# -- the checker itself: it must see what a rename breaks ---------------------------------


class Port(Protocol):
    size: int

    @property
    def name(self) -> str: ...

    def put(self, item: str, *, urgent: bool = False) -> None: ...

    async def flush(self) -> None: ...


class Good:
    size = 1
    name = "good"

    def put(self, item: str, urgent: bool = False, note: str = "") -> None: ...

    async def flush(self) -> None: ...


def variant(**change: object) -> object:
    """A Good with members replaced (None: left out)."""
    body = {k: v for k, v in vars(Good).items() if not k.startswith("__")} | change
    return type("Variant", (), {k: v for k, v in body.items() if v is not None})()


def test_the_checker_passes_a_structural_match():
    assert unmet(Port, Good()) == []
    assert unmet(Port, variant()) == []


@pytest.mark.parametrize(("change", "problem"), [
    ({"size": None}, "size: missing"),
    ({"name": None}, "name: missing"),
    ({"put": lambda self, thing, *, urgent=False: None}, "put: no parameter 'item'"),
    ({"put": lambda self, item, *, urgent: None}, "put: 'urgent' needs a default"),
    ({"put": lambda self, *, item, urgent=False: None},
     "put: 'item' is keyword-only, the port's is positional or keyword"),
    ({"put": lambda self, urgent=False, item="": None},
     "put: positional parameters are not in the port's order ['item']"),
    ({"put": lambda self, item, extra, urgent=False: None}, "put: 'extra' is not in the port and has no default"),
    ({"put": "not callable"}, "put: not a method"),
    ({"flush": lambda self: None}, "flush: not async, unlike the port"),
])
def test_the_checker_finds_a_broken_member(change, problem):
    assert problem in unmet(Port, variant(**change))
