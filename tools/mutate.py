"""Mutation testing of the pure rule modules (issue 14, point 7): do the tests pin every rule
down at its boundary?

A mutant changes one thing in one module: a comparison flipped (< <=, < >, == !=, is, in), and
or, True False, + -, * /, // /, an integer off by one, min max, a `not` dropped, a sort key
reversed. The module's own tests then run against it in a copy of the repository (never in the
working tree, where other test runs may be going on). A mutant the tests do not notice survives:
a boundary no test pins down, or an equivalent mutant (listed in EQUIVALENT with why, and not
run). Strings (docstrings, messages, f-strings), decorators, annotations, a record's default
values and lines marked `# pragma: no mutate` are left alone.

Each mutant's pytest runs in a process of its own, forked from this one after it has imported
pytest and the heavy third-party libraries but nothing of the project: the mutated module and
everything that imports it load afresh in every child, and a run costs about a second instead
of the two or three a new interpreter takes (one worker: the machine has two cores).

    .venv/bin/python tools/mutate.py                                   # every target
    .venv/bin/python tools/mutate.py --module services/rules/dca.py --list
    .venv/bin/python tools/mutate.py --json mutate-report.json --fail-under 95
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass
from io import BytesIO
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Every module of services/rules (new ones included), and the pure bookkeeping beside them.
EXTRA_TARGETS = ("services/portfolio.py", "services/signal_queue.py")

# Tests of a module that do not import it by name (see test_files).
TESTS = {"services/rules/risk_plan.py": ("tests/test_risk_engine.py",)}
FAST_SUITE = ("tests",)
# no:unraisableexception spares each run its closing garbage collections (a third of a second)
PYTEST_ARGS = ("-x", "-q", "-p", "no:cacheprovider", "-p", "no:unraisableexception", "-m", "not tui and not process")
PRELOAD = ("pydantic", "sqlalchemy", "sqlmodel", "textual.app", "syrupy")  # third-party only, never the project

# Mutants no test should tell apart, keyed by (module, the line as written, the mutation), with
# why: they behave exactly like the original, or differ only where no input can reach.
_SIDE = "side_dir is 1 or -1, and x * d == x / d for those"
_DIR = "a direction (and a level's wanted side) is 1 or -1: x * d == x / d, and only its sign is compared"
_EPS = "differs only for an amount of exactly _EPS (1e-9), which is float noise either way"
_SCAN = ("slack in the day scans: a window is at most 7 local dates from t (a skipped date's windows open at "
         "the transition), which each of these scans still reaches")
_NEXT_DAY = "the exit time comes round on the entry's local date or the next: a third day is never looked at"
_DEAD = ("never runs: only a date skipped whole (Apia 2011-12-30) with a 00:00 start maps two days onto one "
         "instant, and session_bounds never takes a skipped date as its day")
EQUIVALENT: dict[tuple[str, str, str], str] = {
    ("services/rules/precision.py", "return max(0, -math.floor(math.log10(step)) + 6)", "0 -> 1"):
        "the floor only acts on steps of ten million or more, which no venue has",
    ("services/rules/precision.py", "return max(0, -math.floor(math.log10(step)) + 6)", "0 -> -1"):
        "the floor only acts on steps of ten million or more, which no venue has",
    ("services/rules/precision.py", "return max(0, -math.floor(math.log10(step)) + 6)", "6 -> 5"):
        "5 spare digits hold any tick or step of up to 6 significant digits (venues use 1 or 2)",
    ("services/rules/risk_plan.py",
     "return (mark - leg.entry) * side_dir(self.side) - leg.entry_fee / leg.qty - mark * fee_rate",
     "(mark - leg.entry) * side_dir(self.side) -> (mark - leg.entry) / side_dir(self.side)"): _SIDE,
    ("services/rules/risk_plan.py",
     "return sum((self.mark_of(leg) - leg.entry) * leg.qty * side_dir(self.side) - leg.entry_fee for leg in self.legs)",
     "(self.mark_of(leg) - leg.entry) * leg.qty * side_dir(self.side) -> "
     "(self.mark_of(leg) - leg.entry) * leg.qty / side_dir(self.side)"): _SIDE,
    ("services/rules/risk_plan.py", "return gap if gap > _EPS else 0.0", "gap > _EPS -> gap >= _EPS"): _EPS,
    ("services/rules/risk_plan.py", "if remaining <= _EPS or per_unit <= 0:", "remaining <= _EPS -> remaining < _EPS"):
        _EPS,
    ("services/rules/risk_plan.py", "if qty == closable and leg.qty - closable > _EPS:",
     "leg.qty - closable > _EPS -> leg.qty - closable >= _EPS"): _EPS,
    ("services/rules/risk_plan.py",
     'listed = ", ".join(closes[:-1]) + " and " + closes[-1] if len(closes) > 1 else closes[0]', "0 -> -1"):
        "with one close, closes[0] is closes[-1]",
    **{("services/rules/schedule.py", line, what): _SCAN for line, whats in (
        ("_SCAN_DAYS = 9  # a valid config has a window at least once a week; one extra day each side for DST/date-line slack",
         ("9 -> 10", "9 -> 8")),
        ("for back in range(_SCAN_DAYS + 1):", ("1 -> 2", "1 -> 0")),
        ("for ahead in range(_SCAN_DAYS + 1):", ("1 -> 2", "1 -> 0")),
        ("day = _local_date(t, cfg.timezone) + timedelta(days=1)", ("1 -> 2", "1 -> 0")),
        ("day = _local_date(t, cfg.timezone) - timedelta(days=1)", ("1 -> 2",)),
    ) for what in whats},
    ("services/rules/schedule.py", "if first <= second:  # unique, or ambiguous (first occurrence is the earlier instant)",
     "first <= second -> first < second"): "when first == second (a unique time) the search returns that same whole second",
    ("services/rules/schedule.py", "if _wall(mid, zone) >= wall:", "_wall(mid, zone) >= wall -> _wall(mid, zone) > wall"):
        "the search runs over a gap, where no instant reads exactly `wall`",
    ("services/rules/schedule.py", "for ahead in range(3):", "3 -> 4"): _NEXT_DAY,
    ("services/rules/schedule.py", "for ahead in range(3):", "3 -> 2"): _NEXT_DAY,
    **{("services/rules/schedule.py", line, what): _DEAD for line, what in (
        ("if end <= begin:  # a start inside a gap can map two days onto one instant", "end <= begin -> end < begin"),
        ("end = local_instant(day + timedelta(days=2), start, tz_name)",
         "day + timedelta(days=2) -> day - timedelta(days=2)"),
        ("end = local_instant(day + timedelta(days=2), start, tz_name)", "2 -> 3"),
        ("end = local_instant(day + timedelta(days=2), start, tz_name)", "2 -> 1"),
    )},
    ("services/rules/schedule.py",
     "if isinstance(step, int) and not isinstance(step, bool) and 1 <= step <= 720:", "720 -> 721"):
        "721 is refused by the field's own le=720 either way; the guard keeps range() from steps it cannot take",
    **{("services/rules/exits.py", line, what): _DIR for line, what in (
        ("if stop is not None and (px - stop) * d <= 0:", "(px - stop) * d -> (px - stop) / d"),
        ("if leg.trail_active and (px - leg.trail_level) * d <= 0:",
         "(px - leg.trail_level) * d -> (px - leg.trail_level) / d"),
        ("if target is not None and (px - target) * d >= 0:", "(px - target) * d -> (px - target) / d"),
        ("return (leg.exit_price - leg.entry) * leg.qty * leg.dir - leg.entry_fee - leg.exit_fee",
         "(leg.exit_price - leg.entry) * leg.qty * leg.dir -> (leg.exit_price - leg.entry) * leg.qty / leg.dir"),
        ("return (price - leg.entry) * qty * leg.dir - fee_in - fee, fee_in",
         "(price - leg.entry) * qty * leg.dir -> (price - leg.entry) * qty / leg.dir"),
        ("return q.bid if leg.dir > 0 else q.ask", "leg.dir > 0 -> leg.dir >= 0"),
        ("return q.bid if leg.dir > 0 else q.ask", "0 -> -1"),
        ("return extreme * (1.0 - distance.value * d)", "distance.value * d -> distance.value / d"),
        ("return extreme - distance.value * d", "distance.value * d -> distance.value / d"),
        ("if (mark - peak) * d <= 0:", "(mark - peak) * d -> (mark - peak) / d"),
        ("return mark, candidate if (candidate - level) * d > 0 else level",
         "(candidate - level) * d -> (candidate - level) / d"),
    )},
    ("services/rules/exits.py", "return mark, candidate if (candidate - level) * d > 0 else level",
     "(candidate - level) * d > 0 -> (candidate - level) * d >= 0"): "when they are equal, candidate is level",
    ("services/rules/exits.py",
     "if planned is not None and (leg.time_exit_at is None or planned < leg.time_exit_at):",
     "planned < leg.time_exit_at -> planned <= leg.time_exit_at"): "when they are equal either one sets the same instant",
    **{("services/rules/levels.py", line, what): _DIR for line, what in (
        ('want = -1 if name == "stop" else 1  # the side of the mark the level belongs on, for a long', "1 -> 2"),
        ("if (price - mark) * d * want > 0:", "(price - mark) * d * want -> (price - mark) * d / want"),
        ("if (price - mark) * d * want > 0:", "(price - mark) * d -> (price - mark) / d"),
        ('where = "above" if d * want > 0 else "below"', "d * want > 0 -> d * want >= 0"),
        ('where = "above" if d * want > 0 else "below"', "d * want -> d / want"),
        ('where = "above" if d * want > 0 else "below"', "0 -> -1"),
        ("level = (max if d > 0 else min)(leg.trail_level, candidate)", "d > 0 -> d >= 0"),
        ("level = (max if d > 0 else min)(leg.trail_level, candidate)", "0 -> -1"),
    )},
    ("services/rules/queue_rank.py", "return (price - mark) * side_dir(side) / price * 100.0",
     "(price - mark) * side_dir(side) -> (price - mark) / side_dir(side)"): _SIDE,
}

# --- mutants -------------------------------------------------------------------------------------

FLIPS = {
    ast.Lt: (ast.LtE, ast.Gt), ast.LtE: (ast.Lt, ast.GtE), ast.Gt: (ast.GtE, ast.Lt), ast.GtE: (ast.Gt, ast.LtE),
    ast.Eq: (ast.NotEq,), ast.NotEq: (ast.Eq,), ast.Is: (ast.IsNot,), ast.IsNot: (ast.Is,),
    ast.In: (ast.NotIn,), ast.NotIn: (ast.In,),
}
ARITHMETIC = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div}
SWAPPED_CALLS = {"min": "max", "max": "min"}


@dataclass(frozen=True)
class Mutant:
    module: str
    node: int  # index of the mutated node in ast.walk order
    variant: int  # which of its alternatives
    line: int
    code: str  # the line as written
    what: str  # "before -> after"

    @property
    def key(self) -> tuple[str, str, str]:
        return self.module, self.code, self.what


class Site:
    """A parsed module, the nodes that are never mutated and the elements of sort keys."""

    def __init__(self, source: str) -> None:
        self.tree = ast.parse(source)
        self.lines = source.splitlines()
        self.nodes = list(ast.walk(self.tree))
        self.frozen: set[int] = set()
        self.sort_keys: set[int] = set()
        for node in self.nodes:
            for part in _untouched_parts(node):
                self.frozen.update(id(n) for n in ast.walk(part))
            for key in _sort_key_tuples(node):
                # a `not` element is already mutated by dropping it, a constant does not order anything
                self.sort_keys.update(id(e) for e in key.elts if not isinstance(e, ast.Constant)
                                      and not (isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not)))

    def alternatives(self, node: ast.AST) -> list[ast.AST]:
        """The nodes that may stand in for `node`, one mutant each."""
        if id(node) in self.frozen or "pragma: no mutate" in self.lines[getattr(node, "lineno", 1) - 1]:
            return []
        out = list(_alternatives(node))
        if id(node) in self.sort_keys:  # the key sorts the other way round
            out.append(node.operand if isinstance(node, ast.UnaryOp) else ast.UnaryOp(ast.USub(), node))
        return out

    def replace(self, old: ast.AST, new: ast.AST) -> None:
        for parent in self.nodes:
            for field, value in ast.iter_fields(parent):
                if value is old:
                    setattr(parent, field, new)
                    return
                if isinstance(value, list) and any(v is old for v in value):
                    value[next(i for i, v in enumerate(value) if v is old)] = new
                    return


def _untouched_parts(node: ast.AST) -> list[ast.AST]:
    """Text, decorators and annotations: what they hold is not a rule."""
    if isinstance(node, ast.JoinedStr):
        return [node]
    parts: list[ast.AST] = []
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        parts += node.decorator_list
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
        parts.append(node.returns)
    if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation:
        parts.append(node.annotation)
    if isinstance(node, ast.ClassDef):  # a field's default value is data (a Field(ge=..) is a rule)
        parts += [s.value for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.value, ast.Constant)]
    return parts


def _sort_key_tuples(node: ast.AST) -> list[ast.Tuple]:
    """The tuples a sort compares: a `key=lambda ...: (...)` and what a `*_key` function returns."""
    if isinstance(node, ast.keyword) and node.arg == "key" and isinstance(node.value, ast.Lambda):
        return [node.value.body] if isinstance(node.value.body, ast.Tuple) else []
    if isinstance(node, ast.FunctionDef) and node.name.endswith("_key"):
        return [r.value for r in ast.walk(node) if isinstance(r, ast.Return) and isinstance(r.value, ast.Tuple)]
    return []


def _stringy(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.IfExp):
        return _stringy(node.body) or _stringy(node.orelse)
    if isinstance(node, ast.BinOp):
        return _stringy(node.left) or _stringy(node.right)
    return isinstance(node, ast.JoinedStr)


def _with(node: ast.AST, **fields) -> ast.AST:
    new = copy.deepcopy(node)
    for name, value in fields.items():
        setattr(new, name, value)
    return new


def _alternatives(node: ast.AST):
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for flip in FLIPS.get(type(op), ()):
                yield _with(node, ops=[*node.ops[:i], flip(), *node.ops[i + 1:]])
    elif isinstance(node, ast.BoolOp):
        yield _with(node, op=ast.Or() if isinstance(node.op, ast.And) else ast.And())
    elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in ARITHMETIC:
        operands = (node.left, node.right) if isinstance(node, ast.BinOp) else (node.value,)
        if not any(_stringy(o) for o in operands):
            yield _with(node, op=ARITHMETIC[type(node.op)]())
    elif isinstance(node, ast.Constant) and type(node.value) is bool:
        yield ast.Constant(not node.value)
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        yield ast.Constant(node.value + 1)
        yield ast.Constant(node.value - 1)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield node.operand
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SWAPPED_CALLS:
        yield _with(node, func=ast.Name(SWAPPED_CALLS[node.func.id], ast.Load()))


def mutants(module: str, source: str) -> list[Mutant]:
    site = Site(source)
    seen: set[str] = set()
    out = []
    for index, node in enumerate(site.nodes):
        for variant, alt in enumerate(site.alternatives(node)):
            mutant = Mutant(module, index, variant, node.lineno, site.lines[node.lineno - 1].strip(),
                            f"{ast.unparse(node)} -> {ast.unparse(alt)}")
            text = mutated(source, mutant)
            if text not in seen:  # two mutations that write the same program are one mutant
                seen.add(text)
                out.append(mutant)
    return out


def mutated(source: str, mutant: Mutant) -> str:
    site = Site(source)  # a fresh tree: walking it again yields the same nodes in the same order
    node = site.nodes[mutant.node]
    site.replace(node, site.alternatives(node)[mutant.variant])
    return ast.unparse(site.tree)


# --- running the tests ---------------------------------------------------------------------------


def targets() -> list[str]:
    rules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "services/rules").glob("*.py") if p.name != "__init__.py")
    return rules + list(EXTRA_TARGETS)


def test_files(module: str) -> list[str]:
    """Its own tests/test_rules_<module>.py, those listed in TESTS and every test file that
    imports it; the fast suite when there are none."""
    dotted = module.removesuffix(".py").replace("/", ".")
    package, _, name = dotted.rpartition(".")
    imports = re.compile(rf"\b{re.escape(dotted)}\b|from {re.escape(package)} import [^\n]*\b{name}\b")
    importers = [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "tests").glob("test_*.py"))
                 if imports.search(p.read_text())]
    found = [f for f in dict.fromkeys([f"tests/test_rules_{name}.py", *TESTS.get(module, ()), *importers])
             if (ROOT / f).exists()]
    return found or list(FAST_SUITE)


class Sandbox:
    """A throwaway copy of the repository: the working tree's files, or a commit's."""

    def __init__(self, rev: str | None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="mutate-"))
        if rev:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
            with tarfile.open(fileobj=BytesIO(archive)) as tar:
                tar.extractall(self.path, filter="data")
        else:
            listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                                     "--exclude-standard"], capture_output=True, check=True).stdout
            for name in filter(None, listed.decode().split("\0")):
                if (ROOT / name).is_file():
                    (self.path / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / name, self.path / name)

    def write(self, module: str, source: str) -> None:
        target = self.path / module
        target.write_text(source)
        # Python trusts a .pyc whose source has the same size and mtime (in seconds): a mutant
        # written within the second as the previous one could run the previous one's bytecode.
        for pyc in (target.parent / "__pycache__").glob(f"{target.stem}.*.pyc"):
            pyc.unlink()

    def run(self, tests: list[str], timeout: float) -> str:
        """"passed", "failed" or "timeout"."""
        pid = os.fork()
        if pid == 0:  # the child: its own session (killed whole on a timeout), output discarded
            code = 3
            try:
                os.setsid()
                os.chdir(self.path)
                sys.path.insert(0, str(self.path))
                os.environ["PYTHONPATH"] = str(self.path)
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.dup2(null, 2)
                code = int(pytest.main([*PYTEST_ARGS, *tests]))
            finally:
                os._exit(code)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return "passed" if os.waitstatus_to_exitcode(status) == 0 else "failed"
            time.sleep(0.01)
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return "timeout"

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@dataclass
class Result:
    module: str
    line: int
    code: str
    what: str
    status: str  # killed | timeout | survived | equivalent
    why: str = ""


def run_module(box: Sandbox, module: str) -> list[Result] | None:
    tests = test_files(module)
    missing = [f for f in (module, *tests) if not (box.path / f).exists()]
    if missing:
        print(f"{module}: {' '.join(missing)} not in the copy; skipped", flush=True)
        return None
    source = (box.path / module).read_text()
    found = mutants(module, source)
    if not found:
        return []
    started = time.monotonic()
    if box.run(tests, timeout=600) != "passed":
        print(f"{module}: its tests fail without a mutant ({' '.join(tests)}); skipped", flush=True)
        return None
    timeout = 3 * (time.monotonic() - started) + 5
    print(f"{module}: {len(found)} mutants, tests {' '.join(tests)}", flush=True)
    results = []
    try:
        for mutant in found:
            fields = dict(module=module, line=mutant.line, code=mutant.code, what=mutant.what)
            if mutant.key in EQUIVALENT:
                results.append(Result(**fields, status="equivalent", why=EQUIVALENT[mutant.key]))
                print("e", end="", flush=True)
                continue
            box.write(module, mutated(source, mutant))
            outcome = box.run(tests, timeout)
            status = {"failed": "killed", "timeout": "timeout", "passed": "survived"}[outcome]
            results.append(Result(**fields, status=status))
            print({"killed": ".", "timeout": "T", "survived": "S"}[status], end="", flush=True)
    finally:
        box.write(module, source)
        print(flush=True)
    return results


def report(results: list[Result]) -> float:
    """Print the survivors, the equivalent mutants and the score (killed of those not equivalent)."""
    for r in results:
        if r.status == "survived":
            print(f"SURVIVED {r.module}:{r.line}  {r.what}    # {r.code}")
    for r in results:
        if r.status == "equivalent":
            print(f"equivalent {r.module}:{r.line}  {r.what}: {r.why}")
    matched, ran = {(r.module, r.code, r.what) for r in results}, {r.module for r in results}
    for key in EQUIVALENT.keys() - matched:
        if key[0] in ran:  # its line or mutation changed: the entry no longer says anything
            print(f"stale EQUIVALENT entry, matches no mutant: {key}")
    count = {s: sum(r.status == s for r in results) for s in ("killed", "timeout", "survived", "equivalent")}
    dead = count["killed"] + count["timeout"]
    score = 100.0 * dead / (dead + count["survived"]) if dead + count["survived"] else 100.0
    print(f"{len(results)} mutants: {count['killed']} killed, {count['timeout']} timed out, "
          f"{count['survived']} survived, {count['equivalent']} equivalent (not run); score {score:.1f} % "
          f"({100.0 * dead / max(1, len(results)):.1f} % of all, the equivalent ones counted as survivors)")
    return score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", help="a target module (repeatable); default: every target")
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests, run nothing")
    parser.add_argument("--rev", help="test this commit instead of the working tree")
    parser.add_argument("--json", type=Path, help="write every mutant and its outcome here")
    parser.add_argument("--fail-under", type=float, default=0.0, help="exit 1 below this score (percent)")
    args = parser.parse_args()
    modules = args.module or targets()
    if args.list:
        for module in modules:
            found = mutants(module, (ROOT / module).read_text())
            print(f"{module}: {len(found)} mutants, tests {' '.join(test_files(module))}")
            for m in found:
                tag = "  (equivalent)" if m.key in EQUIVALENT else ""
                print(f"  {module}:{m.line}  {m.what}{tag}")
        return 0
    for name in PRELOAD:
        importlib.import_module(name)
    box = Sandbox(args.rev)
    started = time.monotonic()
    results: list[Result] = []
    skipped = []
    try:
        for module in modules:
            done = run_module(box, module)
            if done is None:
                skipped.append(module)
            else:
                results += done
    finally:
        box.remove()
    score = report(results)
    print(f"{time.monotonic() - started:.0f} s" + (f"; not run: {', '.join(skipped)}" if skipped else ""))
    if args.json:
        args.json.write_text(json.dumps({"score": round(score, 1), "skipped": skipped,
                                         "mutants": [asdict(r) for r in results]}, indent=1) + "\n")
    return 1 if score < args.fail_under or skipped else 0


if __name__ == "__main__":
    sys.exit(main())
