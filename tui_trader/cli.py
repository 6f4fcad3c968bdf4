"""Command line: `tui-trader` (the TUI), `engine` (headless), `replay`, `positions`, `signal`.

Exit codes: 0 done, 1 internal error (details in the log file), 2 bad input (settings,
arguments, files) with one line per problem on stderr."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from .locations import find_settings, log_file
from .logs import setup_logging
from .settings import Settings, SettingsError, load_settings

log = logging.getLogger("tui_trader")


class UsageError(Exception):
    """Bad input from the user: printed as it is, exit code 2."""


def _common_options(default) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=default, help="settings file (default: ./settings.toml)")
    common.add_argument("--db", metavar="URL_OR_PATH", default=default, help="database: a SQLAlchemy URL or a SQLite file path")
    common.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default=default, help="log level")
    return common


def build_parser() -> argparse.ArgumentParser:
    # The options work before and after the command; SUPPRESS keeps a command's parser from
    # overwriting a value given before it.
    common = _common_options(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="tui-trader", parents=[_common_options(None)],
        description="Keyboard-driven trading cockpit. With no command: the TUI on the paper demo.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", parents=[common], help="the TUI (the default)")
    sub.add_parser("engine", parents=[common], help="the engine headless, logging to stdout; stop with ctrl+c or SIGTERM")
    rp = sub.add_parser("replay", parents=[common], help="run the engine over recorded quotes as fast as it can")
    rp.add_argument("quotes", metavar="QUOTES.csv", help="CSV with header ts,symbol,bid,ask[,last,bid_size,ask_size]")
    rp.add_argument("--out", metavar="RESULT.json", required=True, help="where to write the result")
    rp.add_argument("--skip-bad", action="store_true", help="skip and count bad rows instead of stopping")
    pp = sub.add_parser("positions", parents=[common], help="open positions with their levels, from the database")
    pp.add_argument("--json", action="store_true", help="machine-readable output")
    sp = sub.add_parser("signal", parents=[common], help="an entry signal for a running engine (or the next one to start)",
                        description="Record an entry signal; the running engine (TUI or headless) acts on it within "
                                    "a second, or the next engine to start does, unless it is older than "
                                    "engine.signal_ttl_s.")
    sp.add_argument("--strategy", metavar="ID", help="the strategy to enter")
    sp.add_argument("--symbol", metavar="SYMBOL", help="one of the strategy's symbols (default: all of them)")
    sp.add_argument("--side", choices=["buy", "sell"], help="must match the strategy's side (a check, not an override)")
    sp.add_argument("--price", metavar="P", type=float, help="the signal's price, recorded with it")
    sp.add_argument("--wait", metavar="SECONDS", type=float, default=3.0,
                    help="how long to wait for an engine to take it (default 3)")
    sp.add_argument("--json", metavar="FILE", dest="json_file",
                    help='read the signal from a JSON object instead ("-" = stdin): '
                         '{"strategy": .., "symbol": .., "side": .., "price": ..}')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "run"
    try:
        settings = _settings(args)
        setup_logging(settings.log_level, to_stdout=command == "engine")
        return COMMANDS[command](args, settings)
    except SettingsError as exc:
        print(f"tui-trader: invalid settings in {exc.source}:", file=sys.stderr)
        for line in exc.problems:
            print(f"  {line}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"tui-trader: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (e.g. `| head`): not an error of ours
        sys.stderr.close()
        return 0
    except Exception as exc:  # a programmer error: traceback to the log file, a short line to the user
        log.exception("internal error")
        print(f"tui-trader: internal error: {exc} (details in {log_file()})", file=sys.stderr)
        return 1


def _settings(args) -> Settings:
    overrides = {}
    if args.db:
        overrides["store.url"] = args.db if "://" in args.db else f"sqlite:///{Path(args.db).expanduser().resolve()}"
    if args.log_level:
        overrides["log_level"] = args.log_level
    path = find_settings(args.config)
    if path is None:
        raise UsageError("no settings.toml here; pass one with --config PATH")
    return _override(load_settings(path), overrides)


def _override(settings: Settings, overrides: dict) -> Settings:
    update = {}
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if name:
            update[section] = getattr(settings, section).model_copy(update={name: value})
        else:
            update[section] = value
    return settings.model_copy(update=update) if update else settings


def _engine(settings: Settings):
    from services.clock import RealClock
    from services.engine import Engine
    from services.signal_inbox import SignalInbox, is_shared_url
    from services.store import SqlStore

    store = SqlStore(settings.store.url, settings.store.flush_interval_s)
    engine = Engine(settings, RealClock(), store)
    if is_shared_url(settings.store.url):  # `tui-trader signal` from another process
        engine.attachments.append(SignalInbox(settings.store.url, ttl_s=settings.engine.signal_ttl_s))
    return engine


def cmd_run(args, settings: Settings) -> int:
    from .app import make_app

    app = make_app(settings, _engine(settings))
    app.run()
    return app.return_code or 0


def cmd_engine(args, settings: Settings) -> int:
    return asyncio.run(_run_headless(settings))


async def _run_headless(settings: Settings) -> int:
    from services.store import StoreLockedError

    engine = _engine(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    engine.event_listeners.append(_print_event)
    try:
        await engine.start()
    except (StoreLockedError, RuntimeError) as exc:
        raise UsageError(str(exc)) from None
    print(f"engine running ({engine.mode}); ctrl+c or SIGTERM stops it; positions stay open", flush=True)
    await stop.wait()
    await engine.stop()
    return 0


def _print_event(ev) -> None:
    stamp = datetime.fromtimestamp(ev.ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} {ev.level.upper():8} {ev.category:10} {ev.message}", flush=True)


def cmd_replay(args, settings: Settings) -> int:
    from services.replay import BadRow, read_quotes, run_replay

    if not Path(args.quotes).is_file():
        raise UsageError(f"{args.quotes}: no such file")
    out = Path(args.out)
    if not out.parent.exists():
        raise UsageError(f"--out {args.out}: directory {out.parent} does not exist")
    skipped: list[BadRow] = []
    quotes = read_quotes(args.quotes, skip_bad=args.skip_bad, bad_rows=skipped)
    progress = _progress_bar(Path(args.quotes)) if sys.stderr.isatty() else None
    try:
        with progress or _Nothing():
            on_progress = (lambda n: progress.update(progress.task_ids[0], completed=n)) if progress else None
            result = run_replay(settings, quotes, on_progress=on_progress, skipped=skipped)
    except BadRow as exc:
        raise UsageError(f"{args.quotes}: {exc}; nothing written (use --skip-bad to skip bad rows)") from None
    out.write_text(json.dumps(result.to_json(), indent=1))
    rate = result.quotes / result.elapsed_s if result.elapsed_s else 0.0
    extra = f", {len(skipped)} bad row(s) skipped" if skipped else ""
    print(f"replayed {result.quotes:,} quotes in {result.elapsed_s:.2f}s ({rate:,.0f}/s): "
          f"{len(result.trades)} trades, {len(result.open)} still open{extra} -> {out}")
    return 0


class _Nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _progress_bar(path: Path):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with path.open("rb") as fh:
        lines = max(sum(1 for _ in fh) - 1, 0)
    progress = Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        transient=True)
    progress.add_task("replay", total=lines)
    return progress


def cmd_positions(args, settings: Settings) -> int:
    from services.store import read_open_positions

    rows = read_open_positions(settings.store.url)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("no open positions")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None)
    for col in ("id", "strategy", "symbol", "side", "qty", "entry", "mark", "P&L", "stop", "target", "trail", "status"):
        table.add_column(col, justify="right" if col in ("qty", "entry", "mark", "P&L", "stop", "target", "trail") else "left")
    now = time.time()
    for r in rows:
        trail = "-"
        if r["trail_distance"]:
            trail = f"{r['trail_level']:,.2f}" if r["trail_active"] else f"arms +{r['trail_activation']}"
        status = r["group_status"] if not r["pending_exit"] else f"exiting ({r['pending_exit']})"
        age = now - (r["mark_ts"] or now)
        table.add_row(str(r["group_id"]), r["strategy_id"], r["symbol"], r["side"], f"{r['qty']:g}",
                      f"{r['avg_entry']:,.2f}", f"{r['mark']:,.2f}", f"{r['unrealized_pnl']:+,.2f}",
                      _opt(r["stop"]), _opt(r["target"]), trail, status + (f" (mark {age:.0f}s old)" if age > 60 else ""))
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0


def _opt(v) -> str:
    return "-" if v is None else f"{v:,.2f}"


_SIGNAL_FIELDS = ("strategy", "symbol", "side", "price")


def cmd_signal(args, settings: Settings) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from services.signal_inbox import is_shared_url, post_signal

    if args.json_file is not None:
        if any(getattr(args, f) is not None for f in _SIGNAL_FIELDS):
            raise UsageError("give the signal either as --json or as --strategy/--symbol/--side/--price, not both")
        fields = _signal_from_json(args.json_file)
    else:
        if args.strategy is None:
            raise UsageError("signal: --strategy is required (or --json FILE|-)")
        fields = {f: getattr(args, f) for f in _SIGNAL_FIELDS}
    problems = _signal_problems(settings, fields)
    if args.wait is None or not args.wait >= 0:
        problems.append(f"--wait: must be 0 or more seconds, got {args.wait!r}")
    if problems:
        raise UsageError("signal not recorded:\n  " + "\n  ".join(problems))
    url = settings.store.url
    if not is_shared_url(url):
        raise UsageError(f"store.url {url!r} is an in-memory database no engine can read; use a file or a server")
    try:
        inbox_id = post_signal(url, fields["strategy"], fields["symbol"], fields["side"], fields["price"], time.time())
    except SQLAlchemyError as exc:
        raise UsageError(f"cannot record the signal in {url}: {str(exc).splitlines()[0]}") from None
    row = _wait_for_signal(url, inbox_id, args.wait)
    ttl = settings.engine.signal_ttl_s
    if not args.wait:
        print(f"recorded as #{inbox_id}; a running engine takes it within a second, or the next one to start, "
              f"unless it is older than signal_ttl_s ({ttl:g} s) by then")
    elif row is None or row["status"] == "pending":
        print(f"recorded as #{inbox_id}; no engine took it within {args.wait:g} s — it is handled when an engine "
              f"starts, unless older than signal_ttl_s ({ttl:g} s)")
    elif row["status"] == "taken":
        print(f"signal #{inbox_id} ({fields['strategy']}): {row['outcome']}")
    else:  # rejected or expired: the engine looked at it and did not enter
        print(f"signal #{inbox_id} ({fields['strategy']}) {row['status']}: {row['outcome']}")
    return 0


def _wait_for_signal(url: str, inbox_id: int, wait_s: float) -> dict | None:
    from sqlalchemy.exc import SQLAlchemyError

    from services.signal_inbox import read_inbox_row
    from services.store import open_store_readonly

    if wait_s <= 0:
        return None
    eng = open_store_readonly(url)
    deadline = time.monotonic() + wait_s
    row = None
    try:
        while True:
            try:
                row = read_inbox_row(eng, inbox_id)
            except SQLAlchemyError as exc:  # recorded already; only the answer is missing
                log.warning("reading signal #%d back failed: %s", inbox_id, exc)
            if (row is not None and row["status"] != "pending") or time.monotonic() >= deadline:
                return row
            time.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))
    finally:
        eng.dispose()


def _signal_from_json(source: str) -> dict:
    where = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--json {source}: cannot be read ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"signal JSON on {where} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"signal JSON on {where} must be an object like "
                         '{"strategy": "m", "symbol": "BTCUSDT", "side": "buy", "price": 101.5}')
    problems = [f"{key}: unknown field (expected {', '.join(_SIGNAL_FIELDS)})" for key in data if key not in _SIGNAL_FIELDS]
    fields = {f: data.get(f) for f in _SIGNAL_FIELDS}
    for name in ("strategy", "symbol", "side"):
        if fields[name] is not None and not isinstance(fields[name], str):
            problems.append(f"{name}: must be a string, got {fields[name]!r}")
    if fields["strategy"] is None:
        problems.append("strategy: required field is missing")
    price = fields["price"]
    if price is not None:
        if isinstance(price, bool) or not isinstance(price, (int, float, str)):
            problems.append(f"price: must be a number, got {price!r}")
        else:
            try:
                fields["price"] = float(price)
            except ValueError:
                problems.append(f"price: must be a number, got {price!r}")
    if problems:
        raise UsageError(f"signal not recorded (JSON on {where}):\n  " + "\n  ".join(problems))
    return fields


def _signal_problems(settings: Settings, fields: dict) -> list[str]:
    """Checked against the settings before anything is recorded (the engine checks again)."""
    import math

    problems = []
    sid, symbol, side, price = (fields[f] for f in _SIGNAL_FIELDS)
    strategy = settings.strategies.get(sid) if isinstance(sid, str) else None
    if strategy is None:
        known = ", ".join(sorted(settings.strategies)) or "none are configured"
        problems.append(f"unknown strategy {sid!r} (known: {known})")
    elif not strategy.enabled:
        problems.append(f"strategy {sid} is disabled in the settings")
    if symbol is not None:
        if symbol not in settings.symbols:
            problems.append(f"unknown symbol {symbol!r} (known: {', '.join(settings.symbols)})")
        elif strategy is not None and symbol not in strategy.symbols:
            problems.append(f"strategy {sid} does not trade {symbol} (it trades {', '.join(strategy.symbols)})")
    if side is not None:
        if side not in ("buy", "sell"):
            problems.append(f"side: must be buy or sell, got {side!r}")
        elif strategy is not None and side != strategy.side:
            problems.append(f"strategy {sid} only opens {strategy.side} positions")
    if price is not None and not (math.isfinite(price) and price > 0):
        problems.append(f"price: must be a positive number, got {price:g}")
    return problems


COMMANDS = {"run": cmd_run, "engine": cmd_engine, "replay": cmd_replay, "positions": cmd_positions,
            "signal": cmd_signal}
