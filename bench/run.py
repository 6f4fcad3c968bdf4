"""`make bench`: the DESIGN §8 benchmarks. Writes bench/results.json and prints a table.

    .venv/bin/python bench/run.py [--quick] [--only replay,latency,recovery,tui] [--out PATH]

Each section runs in its own process (and measures RSS or restarts in further child
processes), so one section's memory or warm caches never flatter another's figures.
Timings are reported, never asserted. Generated data goes under bench/data/ (gitignored),
seeded and deterministic, rebuilt when missing."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

SECTIONS = ("replay", "latency", "recovery", "tui")  # the TUI last: it depends on the most moving parts
MARK = "BENCH-RESULT "


# == child processes ==========================================================================

def run_child(name: str, **kwargs) -> dict:
    """Run one measurement in a fresh interpreter; it prints its result as JSON on a marked line."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--kwargs", json.dumps(kwargs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT), timeout=900)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
    raise RuntimeError(f"benchmark child {name!r} failed (exit {proc.returncode}):\n{tail}")


def _child(name: str, kwargs: dict) -> dict:
    if name == "section":
        import importlib

        module = importlib.import_module({"replay": "replay_bench", "latency": "latency", "recovery": "recovery",
                                          "tui": "tui_bench"}[kwargs["section"]])
        return module.section(run_child, quick=kwargs.get("quick", False))
    if name == "replay_e2e":
        from replay_bench import child_end_to_end
        return child_end_to_end(kwargs["spacing"], kwargs["positions"])
    if name == "replay_list_rss":
        from replay_bench import child_engine_only_rss
        return child_engine_only_rss(kwargs["positions"])
    if name == "recovery_restart":
        from recovery import child_restart
        return child_restart(kwargs["db"])
    if name == "tui_load":
        from tui_bench import child_tui
        return child_tui(kwargs["spawned_at"], kwargs.get("seconds", 10.0))
    raise SystemExit(f"unknown child {name!r}")


# == figures ==================================================================================

def _get(d: dict | None, *path, default=None):
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return default
        d = d[key]
    return d


def figures(sections: dict) -> list[dict]:
    """The headline numbers, each with its DESIGN §8 target (None: reported, no target)."""
    out: list[dict] = []

    def fig(name, value, unit, target=None, op=None, note=""):
        ok = None
        if value is not None and target is not None:
            ok = value >= target if op == ">=" else value <= target
        text = None if target is None else f"{op} {target:,} {unit}"
        out.append({"name": name, "value": value, "unit": unit, "target": text, "ok": ok, "note": note})

    r = sections.get("replay", {})
    for spacing, w in (_get(r, "workloads") or {}).items():
        design = spacing == "10ms"  # DESIGN §8's file: the targets are its figures
        label = f"quotes {spacing} apart" + (" (DESIGN)" if design else "")
        fig(f"{label}: baseline, bare trailing-level loop", _get(w, "baseline_loop", "quotes_per_s"), "quotes/s",
            note=f"same quotes, same run; {w.get('market_s', 0):,} s of market")
        for kind, runs in (("engine only", w.get("engine_only") or {}), ("end to end", w.get("end_to_end") or {})):
            for pos, e in sorted(runs.items(), key=lambda kv: int(kv[0])):
                chk = e.get("check", {})
                note = (f"{chk.get('trades', '?')} trades, {chk.get('re_entries', '?')} re-entries"
                        + ("" if chk.get("ok", True) else " CHECK FAILED"))
                target = 200_000 if design and kind == "end to end" and pos == "100" else None
                fig(f"  {kind}, {pos} positions", e.get("quotes_per_s"), "quotes/s", target, ">=",
                    note + (", CSV parsed on the way (read_quotes + run_replay)" if kind == "end to end" else ""))
                fig("    ratio to the baseline loop", e.get("vs_baseline"), "x")
                share = e.get("tick_share")
                fig("    share of the run in Engine.tick", None if share is None else round(share * 100, 1), "%",
                    note=f"{e.get('ticks', '?')} ticks")
                if kind == "end to end":
                    fig("    peak RSS", e.get("peak_rss_mb"), "MB", 300, "<=",
                        f"{e.get('rss_after_imports_mb', '?')} MB after imports")
        fig("  CSV parse only (read_quotes)", _get(w, "parse_only", "quotes_per_s"), "quotes/s")
    lr = _get(r, "engine_only_with_list_rss")
    if lr:
        fig("replay peak RSS, whole file parsed into a list first", lr.get("peak_rss_mb"), "MB",
            note="the list of 1M quotes alone, not the engine")

    lat = sections.get("latency", {})
    d = _get(lat, "memory_store", "decision") or {}
    fig("quote -> exit decision p50", d.get("p50_us"), "us", note=f"{d.get('n', 0)} exits, MemoryStore")
    fig("quote -> exit decision p99", d.get("p99_us"), "us", 100, "<=")
    c = _get(lat, "sql_store", "committed_exit_order") or {}
    fig("quote -> committed exit order p50", c.get("p50_us"), "us", note=f"{c.get('n', 0)} exits, SqlStore on SQLite")
    fig("quote -> committed exit order p99", c.get("p99_us"), "us", 2_000, "<=")

    t = sections.get("tui", {})
    if "pending" in t:
        out.append({"name": "TUI under load", "value": None, "unit": "", "target": None, "ok": None,
                    "note": "PENDING: " + t["pending"]})
    elif t and "error" not in t:
        fig("TUI first frame after app start", t.get("first_frame_s"), "s", 1, "<=",
            f"process spawn -> first frame {t.get('spawn_to_first_frame_s', '?')} s")
        fig("  first frame with the engine running", t.get("first_frame_with_engine_running_s"), "s",
            note=f"engine.start() returned at {t.get('engine_started_s', '?')} s; run_test ready at "
                 f"{t.get('run_test_ready_s', '?')} s (500 entries committed)")
        for name, w in (t.get("windows") or {}).items():
            lag = w.get("loop_lag", {})
            fig(f"TUI loop lag p50, {name} screen", lag.get("p50_ms"), "ms",
                note=f"{w.get('screen')}, {t.get('open_positions_at_end')} positions, {lag.get('n', 0)} samples"
                     + ("" if t.get("open_positions_at_end") == 500 else " CHECK FAILED: the load is 500 positions"))
            fig(f"TUI loop lag p99, {name} screen", lag.get("p99_ms"), "ms", 20, "<=")
            fig(f"TUI frames rendered, {name} screen", w.get("frames_per_s"), "per s", note="target: a few per second")
            fig(f"TUI quotes processed, {name} screen", w.get("quotes_per_s"), "quotes/s",
                note="offered: 2,000/s (the simulated feed falls behind when the loop is busy)")

    rec = sections.get("recovery", {})
    fig("restart with 10,000 open legs -> managed book", rec.get("open_s_median"), "s", 1, "<=",
        "build_engine() + open(), median of fresh processes")
    fig("  then first snapshot", rec.get("first_snapshot_s_median"), "s")
    fig("  then a first quote on every symbol", rec.get("first_quote_per_symbol_s_median"), "s", note="10,000 legs marked")
    return out


def _fmt(v, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "x":
        return f"{v:.3f}x"
    if isinstance(v, float) and v < 100:
        return f"{v:,.3g} {unit}" if v < 10 else f"{v:,.1f} {unit}"
    return f"{v:,.0f} {unit}"


def print_table(figs: list[dict], results: dict) -> None:
    m = results["machine"]
    print(f"\ntui_trader benchmarks - {m['platform']}, Python {m['python']}, {m['cpu_count']} CPUs")
    loads = [v for sec in results["load_average"].values() for v in sec.values()]
    if loads:
        print(f"1-minute load average during the run: {min(loads):.2f} to {max(loads):.2f} "
              "(anything else running on the machine slows every figure)")
    rows = [("figure", "value", "target", "", "note")]
    for f in figs:
        status = {True: "ok", False: "MISS", None: ""}[f["ok"]]
        rows.append((f["name"], _fmt(f["value"], f["unit"]), f["target"] or "", status, f["note"]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
        if i == 0:
            print("  ".join("-" * w for w in widths) + "  ----")
    for name, sec in results["sections"].items():
        if "error" in sec:
            print(f"\n[{name}] FAILED: {sec['error'].splitlines()[-1]}")
    print(f"\nwrote {results['out']} in {results['duration_s']:.0f} s")


def machine() -> dict:
    info = {"cpu_count": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "platform": platform.platform(),
            "machine": platform.machine()}
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                            text=True, timeout=10).stdout.strip() or None
    except OSError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and samples (a smoke run)")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {','.join(SECTIONS)}")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--kwargs", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        result = _child(args.child, json.loads(args.kwargs))
        print(MARK + json.dumps(result), flush=True)
        return 0

    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    started = time.perf_counter()
    results = {"machine": machine(), "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "quick": args.quick, "sections": {}, "section_seconds": {}, "load_average": {}}
    for name in SECTIONS:
        if name not in wanted:
            continue
        print(f"[{name}] running ...", flush=True)
        t0 = time.perf_counter()
        load_before = os.getloadavg()[0]
        try:
            results["sections"][name] = run_child("section", section=name, quick=args.quick)
        except Exception as exc:  # one broken section must not lose the others' figures
            results["sections"][name] = {"error": "".join(traceback.format_exception_only(exc)).strip()}
        results["section_seconds"][name] = round(time.perf_counter() - t0, 1)
        # This is a shared 2-core machine: other work running at the same time slows every figure.
        results["load_average"][name] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
        print(f"[{name}] done in {results['section_seconds'][name]:.0f} s", flush=True)
    results["duration_s"] = round(time.perf_counter() - started, 1)
    results["out"] = args.out
    results["figures"] = figures(results["sections"])
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print_table(results["figures"], results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
