"""The import contracts name every module they must: a module added to services is covered by
the adapters contract (only the composition root and replay build adapters) or says why not."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCES = {"services.adapters", "services.replay"}
"""The adapters themselves, and replay (which builds its own)."""


def test_the_adapters_contract_covers_every_services_module():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (adapters,) = [c for c in contracts if c["name"].startswith("Adapters")]
    modules = {f"services.{p.stem}" for p in (ROOT / "services").iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    missing = sorted(modules - NOT_SOURCES - set(adapters["source_modules"]))
    assert not missing, f"add {missing} to the adapters contract's source_modules in pyproject.toml"
