"""The lock of exact versions (requirements-lock.txt, `make lock`) still satisfies the ranges
in pyproject.toml: a range changed without re-locking fails here, not on a fresh machine."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def pinned(text: str) -> dict[str, str]:
    """name -> exact version, from the lock's `name==version[ ; markers]` lines."""
    pins = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)", line)
        if m:
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def unsatisfied(pyproject: dict, pins: dict[str, str]) -> list[str]:
    project = pyproject["project"]
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]
    problems = []
    for req in wanted:
        version = pins.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req.name} is not in the lock")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}=={version} does not satisfy {req.specifier}")
    return problems


def test_the_lock_satisfies_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = pinned((ROOT / "requirements-lock.txt").read_text())
    assert unsatisfied(pyproject, pins) == [], "run `make lock` and commit requirements-lock.txt"


def test_a_stale_lock_is_caught():
    pyproject = {"project": {"dependencies": ["textual>=8.2,<9", "rich>=13"],
                             "optional-dependencies": {"test": ["pytest>=8"]}}}
    pins = pinned("textual==9.0.1\n    # via x\npytest==8.4.2 ; python_version >= '3.11'\n")
    assert unsatisfied(pyproject, pins) == ["textual==9.0.1 does not satisfy <9,>=8.2", "rich is not in the lock"]
