"""Settings fuzzing (issue 13): fields of the demo settings mutated to a wrong type, a negative,
zero, inf, nan, 1e308, an empty, huge, unicode or NUL-bearing string. Each file either loads,
and an engine on it then takes a quote per symbol, or is refused by SettingsError with a field
path on every line; nothing else may escape. Seeded and bounded (SETTINGS_FUZZ_SEED picks
other mutations): every field gets KINDS_PER_FIELD of the mutations, then COMBINATIONS files
mutate several fields at once."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import tomllib
from pathlib import Path
from types import UnionType
from typing import Annotated, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from services.clock import FakeClock
from services.domain import Fill
from tui_trader.wiring import build_engine
from services.store import MemoryStore
from tests.conftest import T0
from tui_trader.locations import PROJECT_SETTINGS
from tui_trader.settings import Settings, SettingsError, load_settings

DEMO = tomllib.loads(PROJECT_SETTINGS.read_text(encoding="utf-8"))
SEED = int(os.environ.get("SETTINGS_FUZZ_SEED", "13"))
KINDS_PER_FIELD = 3
COMBINATIONS = 60  # about 5 ms a file: a few seconds in all

MUTATIONS = {
    "wrong type": lambda v: 12 if isinstance(v, str) else "twelve",
    "negative": lambda v: -abs(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else -1,
    "zero": lambda v: 0,
    "inf": lambda v: math.inf,
    "nan": lambda v: math.nan,
    "1e308": lambda v: 1e308,
    "empty string": lambda v: "",
    "huge string": lambda v: "x" * 10_000,  # beyond any path (4096) or file name (255)
    "unicode": lambda v: "Ünïcødé ☃ 𝔘",
    "NUL": lambda v: "a\x00b",
}


def paths(node, prefix=()):
    """Every node below the root: sections, lists and scalar values."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield prefix + (key,)
        yield from paths(child, prefix + (key,))


PATHS = list(paths(DEMO))


def mutated(data, path, make):
    data = json.loads(json.dumps(data))  # a deep copy the mutation can change
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = make(parent[path[-1]])
    return data


def applied(changes: list[tuple[tuple, str]]) -> dict:
    """The demo settings with these (path, mutation) changes, in order."""
    data = DEMO
    for path, kind in changes:
        data = mutated(data, path, MUTATIONS[kind])
    return data


def dotted(path: tuple) -> str:
    return ".".join(map(str, path))


def to_toml(data) -> str:
    """Each section as a top-level key = inline table. JSON strings are TOML basic strings
    when non-ASCII is left as it is (a NUL becomes \\u0000)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return "nan" if v != v else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v, ensure_ascii=False)
    return "".join(f"{json.dumps(k, ensure_ascii=False)} = {value(v)}\n" for k, v in data.items())


def _inner(kind):
    """The model, table or list a field holds, without None and Annotated."""
    if get_origin(kind) in (Union, UnionType):
        kind = next(arg for arg in get_args(kind) if arg is not type(None))
    return get_args(kind)[0] if get_origin(kind) is Annotated else kind


def _is_model(kind) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def names_a_field(line: str, replaced: set[str]) -> bool:
    """Whether a problem line starts with the path of one setting: through the models, tables
    and lists down to a model's field (or an unknown key, refused by its name) or a list's
    item that is a plain value; or to a value the test replaced (a table by a number...)."""
    path, sep, reason = line.partition(": ")
    if not sep or not reason.strip() or "\n" in line:
        return False
    if path in replaced:
        return True
    *parents, last = path.split(".")
    kind = Settings
    for key in parents:
        kind = _inner(kind)
        if _is_model(kind) and key in kind.model_fields:
            kind = kind.model_fields[key].annotation
        elif get_origin(kind) is dict:
            kind = get_args(kind)[1]
        elif get_origin(kind) is list and key.isdigit():
            kind = get_args(kind)[0]
        else:
            return False
    kind = _inner(kind)
    if _is_model(kind):
        return last in kind.model_fields or last.isidentifier()
    return get_origin(kind) is list and last.isdigit() and not _is_model(_inner(get_args(kind)[0]))


class FillCheckingStore(MemoryStore):
    """A fill the SQL store could not insert (a NaN price is NULL there) fails here."""

    def write(self, records):
        records = list(records)
        for rec in records:
            if isinstance(rec, Fill):
                assert math.isfinite(rec.price) and rec.price > 0, rec.row()
                assert math.isfinite(rec.qty) and rec.qty > 0, rec.row()
        super().write(records)


def outcome(tmp_path: Path, changes: list[tuple[tuple, str]]) -> str:
    """Load the demo settings with these (path, mutation) changes: "" when they were refused
    with every line naming a field, or loaded and ran; else what went wrong."""
    file = tmp_path / "settings.toml"
    file.write_text(to_toml(applied(changes)), encoding="utf-8")
    try:
        settings = load_settings(file)
    except SettingsError as exc:
        replaced = {dotted(path) for path, _ in changes}
        unnamed = [line for line in exc.problems if not names_a_field(line, replaced)]
        return f"names no field: {unnamed}" if unnamed or not exc.problems else ""
    except Exception as exc:  # noqa: BLE001 - the point of the test
        return f"load raised {type(exc).__name__}: {exc}"
    try:
        engine = build_engine(settings, FakeClock(T0), FillCheckingStore())
        engine.open()
        for symbol in settings.symbols:
            engine.on_quote(engine.feed.next_quote(symbol))
        engine.tick()
        engine.snapshot()
    except Exception as exc:  # noqa: BLE001
        return f"engine raised {type(exc).__name__}: {exc}"
    return ""


def failures(tmp_path: Path, cases: list[list[tuple[tuple, str]]]) -> str:
    found = [f"{', '.join(f'{dotted(path)} = {kind}' for path, kind in changes)}: {what}"
             for changes in cases if (what := outcome(tmp_path, changes))]
    return f"SETTINGS_FUZZ_SEED={SEED}:\n" + "\n".join(found) if found else ""


def test_the_demo_settings_serialise_to_themselves_and_run(tmp_path):
    assert tomllib.loads(to_toml(DEMO)) == DEMO
    assert outcome(tmp_path, []) == ""


def test_every_field_mutated_loads_and_runs_or_is_refused_naming_fields(tmp_path):
    rng = random.Random(SEED)
    cases = [[(path, kind)] for path in PATHS for kind in rng.sample(list(MUTATIONS), KINDS_PER_FIELD)]
    assert not failures(tmp_path, cases)


def test_several_fields_mutated_at_once_load_and_run_or_are_refused_naming_fields(tmp_path):
    rng = random.Random(SEED + 1)
    cases = []
    while len(cases) < COMBINATIONS:
        changes = [(rng.choice(PATHS), rng.choice(list(MUTATIONS))) for _ in range(rng.randint(2, 4))]
        try:
            applied(changes)
        except (KeyError, IndexError, TypeError):  # under a table an earlier change replaced
            continue
        cases.append(changes)
    assert not failures(tmp_path, cases)


@pytest.mark.parametrize("path, value, field", [
    (("strategies", "dca_btc", "dca", "layers", 2, "weight"), math.inf, "strategies.dca_btc.dca.layers.2.weight"),
    (("store", "url"), "abc", "store.url"),
])
def test_the_cli_refuses_bad_settings_with_exit_2_naming_the_field(tmp_path, path, value, field):
    bad = tmp_path / "bad.toml"
    bad.write_text(to_toml(mutated(DEMO, path, lambda _: value)), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "tui_trader", "positions", "--config", str(bad)],
                          capture_output=True, text=True, timeout=60,
                          env={"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"\n  {field}: " in proc.stderr, proc.stderr
