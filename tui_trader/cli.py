"""Command line: `tui-trader` (the TUI), `engine` (headless), `replay`, `positions`, `signal`,
`levels`, `exit`, `check-exits`, `logs` (in cli_logs.py).

Exit codes: 0 done, 2 bad input (settings, arguments, files) with one line per problem on
stderr, 1 otherwise: a command the engine refused, no engine running to take it, or an
internal error (details in the log file)."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

from services.signal_message import ACTIONS, EXAMPLE, MAX_BODY_BYTES

from . import cli_logs
from .usage import UsageError
from .headless import run_headless
from .locations import data_dir, demo_notice, find_settings, log_file
from .logs import mirror_events, setup_logging
from .settings import Settings, SettingsError, load_settings

log = logging.getLogger("tui_trader")


MAX_WAIT_S = 3600.0
"""The longest --wait: more is a typo, not a wait."""


def _seconds(raw: str) -> float:
    """--wait: a number of seconds (the commands check its sign); never inf or nan, which
    would wait forever or not at all."""
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value <= MAX_WAIT_S):
        raise argparse.ArgumentTypeError(f"expected a number of seconds up to {MAX_WAIT_S:g}, got {raw!r}")
    return value


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
    rp.add_argument("--signals", metavar="SIGNALS", help="timed signals to feed in: CSV with header "
                    "ts,strategy,symbol,action[,price,size,timeframe,comment], or JSON lines "
                    '({"ts": ..., plus the body `signal --json` takes})')
    rp.add_argument("--skip-bad", action="store_true",
                    help="skip and count bad rows (quotes and signals) instead of stopping")
    pp = sub.add_parser("positions", parents=[common], help="open positions with their levels, from the database")
    pp.add_argument("--json", action="store_true", help="machine-readable output")
    sp = sub.add_parser("signal", parents=[common], help="an entry or exit signal for a running engine (or the next one to start)",
                        description="Record a signal; the running engine (TUI or headless) acts on it within a "
                                    "second, or the next engine to start does, unless it is older than "
                                    "engine.signal_ttl_s. A sell for a long strategy (a buy for a short one) "
                                    "is an exit, as in TradingView.")
    sp.add_argument("--strategy", metavar="ID", help="the strategy the signal is for")
    sp.add_argument("--symbol", metavar="SYMBOL", help="one of the strategy's symbols (default: all of them)")
    sp.add_argument("--action", "--side", dest="action", metavar="ACTION", type=str.lower, choices=ACTIONS,
                    help="buy/long or sell/short: an entry on the strategy's side, an exit on the other; "
                         "exit, close or flat: an exit (default: an entry)")
    sp.add_argument("--price", metavar="P", help="the signal's price, recorded with it")
    sp.add_argument("--timeframe", metavar="TF", help='the chart interval, e.g. 15, 1h, 1D (a newer queued signal for '
                                                       'the same strategy, symbol and timeframe replaces an older one)')
    sp.add_argument("--size", metavar="Q", help="the entry's quantity instead of the strategy's sizing")
    sp.add_argument("--wait", metavar="SECONDS", type=_seconds, default=3.0,
                    help="how long to wait for an engine to take it (default 3)")
    sp.add_argument("--json", metavar="FILE", dest="json_file",
                    help='read the signal from a JSON object instead ("-" = stdin), e.g. a TradingView alert '
                         f"message: {EXAMPLE}")
    lp = sub.add_parser("levels", parents=[common], help="move a position's stop, target, trailing stop or time exit",
                        description="Change an open position's exit levels; the running engine (TUI or headless) "
                                    "checks them against the mark, records and applies them. DIST is a percentage "
                                    "like 0.5% or a number of price points; none removes a level.")
    lp.add_argument("position", metavar="POSITION", help="the position's # (as in the TUI and `tui-trader positions`)")
    lp.add_argument("--stop", metavar="PRICE|none", help="stop-loss price")
    lp.add_argument("--target", metavar="PRICE|none", help="target price")
    lp.add_argument("--trail", metavar="DIST|none", help="trailing distance from the peak")
    lp.add_argument("--trail-activation", metavar="DIST", help="profit over the entry that arms the trailing stop")
    lp.add_argument("--time-exit", metavar="HH:MM|+SECONDS|none",
                    help="exit at this time of day (next occurrence, in book.timezone) or this many seconds from now")
    lp.add_argument("--leg", metavar="LEG", type=int, help="for a basket: which leg (its id, as in `positions --json`)")
    lp.add_argument("--yes", action="store_true", help="apply an edit even if it exits the position at once")
    ep = sub.add_parser("exit", parents=[common], help="exit a position, a strategy's positions, or everything",
                        description="Exit at market through the running engine (TUI or headless).")
    ep.add_argument("position", metavar="POSITION", nargs="?", help="the position's # (as in `tui-trader positions`)")
    ep.add_argument("--strategy", metavar="ID", help="every open position of this strategy")
    ep.add_argument("--all", action="store_true", help="every open position (needs --yes, or typing EXIT on a terminal)")
    ep.add_argument("--yes", action="store_true", help="confirm --all")
    pause_resume = []
    for name, what in (("pause", "stop entries"), ("resume", "allow entries again")):
        command = sub.add_parser(name, parents=[common], help=f"{what}: one strategy's, or the whole book's with --all",
                                 description=f"{what.capitalize()} through the running engine (TUI or headless). Open "
                                             "positions are managed either way.")
        command.add_argument("strategy", metavar="STRATEGY", nargs="?", help="the strategy's id")
        command.add_argument("--all", action="store_true", help="the book-wide switch: every strategy, signal and "
                                                                "queued entry")
        pause_resume.append(command)
    for command in (lp, ep, *pause_resume):
        command.add_argument("--wait", metavar="SECONDS", type=_seconds, default=5.0,
                             help="how long to wait for the engine's answer (default 5)")
    cp = sub.add_parser("check-exits", parents=[common], help="the exit rules closest to triggering, from the database")
    cp.add_argument("--json", action="store_true", help="machine-readable output")
    cli_logs.add_arguments(sub.add_parser("logs", parents=[common], help="the engine's events, from the database",
                                          description="The events the Logs screen shows, oldest first; works "
                                                      "while an engine runs. Times are UTC."))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or "run"
    log_path = log_file()
    try:
        problems = _argument_problems(parser, args)
        if problems:
            raise UsageError("\n  ".join(problems))
        settings, args.settings_path = _settings(args)
        from services.store.urls import safe_url  # SQLAlchemy: not for --help or a bad argument

        log_path = log_file(settings.logs.file)
        setup_logging(settings.log_level, to_stdout=command == "engine", path=log_path,
                      max_bytes=int(settings.logs.file_max_mb * 1_000_000), backups=settings.logs.file_backups)
        log.info("tui-trader %s: settings %s; data directory %s; database %s", command, args.settings_path,
                 data_dir(), safe_url(settings.store.url))
        notice = demo_notice(args.settings_path, args.config)
        if notice and command == "engine":
            print(f"tui-trader: {notice}", file=sys.stderr)
        args.notice = notice
        return _run_command(command, args, settings)
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
        print(f"tui-trader: internal error: {exc} (details in {log_path})", file=sys.stderr)
        return 1


def _run_command(command: str, args, settings: Settings) -> int:
    from services.store import SchemaTooNewError
    from services.store.sql import NoDatabaseError, StoreError, database_busy

    try:
        return COMMANDS[command](args, settings)
    except SchemaTooNewError as exc:  # a database this version cannot use: the user's to fix, not a bug
        raise UsageError(str(exc)) from None
    except StoreError as exc:
        if not database_busy(exc):
            raise
        # another process holds the write lock (an engine's commit takes milliseconds): not bad input
        print(f"tui-trader: database busy, try again (another process holds its write lock: "
              f"{str(exc.orig).splitlines()[0]})", file=sys.stderr)
        return 1
    except NoDatabaseError as exc:  # a read command, and nothing recorded yet
        print(f"tui-trader: {exc}", file=sys.stderr)
        return 1


def _argument_problems(parser: argparse.ArgumentParser, args) -> list[str]:
    """One line per argument that is not UTF-8 text (its bytes arrive as lone surrogates: no
    database, file name or terminal could take it as it is), or that argparse left without
    its value (`--db=--` gives an empty list)."""
    actions = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and args.command in action.choices:
            actions += action.choices[args.command]._actions
    names = {a.dest: a.option_strings[0] if a.option_strings else a.metavar for a in actions}
    problems = []
    for dest, value in vars(args).items():
        if value == []:
            problems.append(f"{names.get(dest, dest)}: expected a value")
        elif isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                problems.append(f"{names.get(dest, dest)} {os.fsencode(value)!r}: not valid UTF-8 text")
    return problems


def _settings(args) -> tuple[Settings, Path]:
    from services.store.urls import safe_url, url_problem

    overrides = {}
    if args.db is not None:
        if not args.db.strip():
            raise UsageError("--db is empty: give a SQLite file path or a database URL")
        overrides["store.url"] = args.db if "://" in args.db else f"sqlite:///{Path(args.db).expanduser().resolve()}"
    if args.log_level:
        overrides["log_level"] = args.log_level
    path = find_settings(args.config)
    if path is None:
        raise UsageError("no settings.toml here; pass one with --config PATH")
    settings = _override(load_settings(path), overrides)
    problem = url_problem(settings.store.url)
    if problem:
        shown = _shown_path(args.db) if args.db is not None and "://" not in args.db else safe_url(settings.store.url)
        raise UsageError(f"{'--db' if args.db is not None else 'store.url'} {shown}: {problem}")
    return settings, path


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
    """The engine for `run` and `engine`, with what the settings attach to it."""
    from services.alert_hook import AlertHook
    from services.clock import RealClock
    from services.command_inbox import CommandInbox
    from services.engine import Engine
    from tui_trader.wiring import build_engine
    from services.signal_inbox import SignalInbox
    from services.store import SqlStore
    from services.store.urls import is_shared_url

    store = SqlStore(settings.store.url, settings.store.flush_interval_s)
    engine = build_engine(settings, RealClock(), store)
    if is_shared_url(settings.store.url):  # `tui-trader signal`, `levels` and `exit` from another process
        engine.attachments.append(SignalInbox(settings.store.url, ttl_s=settings.engine.signal_ttl_s))
        engine.attachments.append(CommandInbox(settings.store.url))
    if settings.alerts.on_alert:
        engine.attachments.append(AlertHook(settings.alerts.on_alert, settings.alerts.on_alert_timeout_s))
    mirror_events(engine)  # every event in the log file too
    return engine


def cmd_run(args, settings: Settings) -> int:
    from .app import make_app

    app = make_app(settings, _engine(settings), args.settings_path, args.notice)
    app.run()
    return app.return_code or 0


def cmd_engine(args, settings: Settings) -> int:
    return asyncio.run(_run_headless(settings))


async def _run_headless(settings: Settings) -> int:
    from services.store import SchemaTooNewError, StoreLockedError

    color = sys.stdout.isatty()
    try:
        return await run_headless(_engine(settings), lambda ev: cli_logs.event_line(ev, color))
    except (StoreLockedError, SchemaTooNewError, RuntimeError) as exc:
        raise UsageError(str(exc)) from None


def cmd_replay(args, settings: Settings) -> int:
    from services.replay import BadFile, BadRow, read_quotes, run_replay
    from services.replay_signals import read_signals

    for name, path in (("QUOTES.csv", args.quotes), ("--signals", args.signals)):
        if path is not None:
            _check_readable(name, path)
    out = Path(args.out)
    _check_out(out, args.out)
    bad_signals: list[BadRow] = []
    try:
        signals = read_signals(args.signals, settings, args.skip_bad, bad_signals) if args.signals else []
    except BadRow as exc:
        raise _bad_row(args.signals, exc) from None
    except BadFile as exc:
        raise UsageError(f"{args.signals}: {exc}; nothing written") from None
    skipped: list[BadRow] = []
    quotes = read_quotes(args.quotes, skip_bad=args.skip_bad, bad_rows=skipped)
    progress = _progress_bar(Path(args.quotes)) if sys.stderr.isatty() else None
    try:
        with progress or _Nothing():
            on_progress = (lambda n: progress.update(progress.task_ids[0], completed=n)) if progress else None
            result = run_replay(settings, quotes, on_progress=on_progress, skipped=skipped, signals=signals)
    except BadRow as exc:
        raise _bad_row(args.quotes, exc) from None
    except BadFile as exc:
        raise UsageError(f"{args.quotes}: {exc}; nothing written") from None
    result.skipped_signals = bad_signals
    out.write_text(json.dumps(result.to_json(), indent=1))
    for line in result.warnings:
        print(f"tui-trader: warning: {line}", file=sys.stderr)
    rate = result.quotes / result.elapsed_s if result.elapsed_s else 0.0
    extra = "".join(f", {len(rows)} bad {what} row(s) skipped"
                    for what, rows in (("quote", skipped), ("signal", bad_signals)) if rows)
    print(f"replayed {result.quotes:,} quotes in {result.elapsed_s:.2f}s ({rate:,.0f}/s): "
          f"{len(result.trades)} trades, {len(result.open)} still open{extra} -> {out}")
    print(_replay_summary(result))
    return 0


def _check_readable(name: str, path: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise UsageError(f"{name} {_shown_path(path)}: cannot be read ({exc.strerror})") from None


def _shown_path(path: str) -> str:
    """A path as typed, quoted if it is empty or holds a tab, a newline or the like."""
    return path if path.isprintable() and path.strip() else repr(path)


def _check_out(out: Path, raw: str) -> None:
    """--out is found unwritable before the run, not after it: by opening it (to append
    nothing; a file created for the test is removed again)."""
    raw = _shown_path(raw)
    if os.path.isdir(out):
        raise UsageError(f"--out {raw}: a directory; give the result file's name, e.g. {out / 'result.json'}")
    if not os.path.isdir(out.parent):
        raise UsageError(f"--out {raw}: directory {out.parent} does not exist")
    existed = os.path.exists(out)
    try:
        out.open("ab").close()
    except OSError as exc:
        raise UsageError(f"--out {raw}: cannot be written ({exc.strerror})") from None
    if not existed:
        out.unlink()


def _bad_row(path: str, exc) -> UsageError:
    return UsageError(f"{path}: {exc}; nothing written (use --skip-bad to skip bad rows)")


def _replay_summary(result) -> str:
    from collections import Counter

    from screens.format import money

    s = result.summary()
    win_rate = "—" if s["win_rate"] is None else f"{s['win_rate']:.0%}"
    text = (f"P&L: {s['trades']} trade(s), win rate {win_rate}, realized {money(s['realized_pnl'])}, max drawdown "
            f"{s['max_drawdown']:,.2f} (realized, trade by trade), unrealized {money(s['unrealized_pnl'])} "
            f"on {s['open']} open position(s)")
    if result.signals:
        counts = Counter(o["status"] for o in result.signals)
        text += f"\nsignals: {len(result.signals)} ({', '.join(f'{n} {status}' for status, n in counts.items())})"
    return text


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
    from services.store.read_models import read_open_positions

    from screens.format import side_word

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
        table.add_row(str(r["group_id"]), r["strategy_id"], r["symbol"], side_word(r["side"]), f"{r['qty']:g}",
                      f"{r['avg_entry']:,.2f}", f"{r['mark']:,.2f}", f"{r['unrealized_pnl']:+,.2f}",
                      _opt(r["stop"]), _opt(r["target"]), trail, status + (f" (mark {age:.0f}s old)" if age > 60 else ""))
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0


def _opt(v) -> str:
    return "-" if v is None else f"{v:,.2f}"


_SIGNAL_FIELDS = ("strategy", "symbol", "action", "price", "timeframe", "size")


def cmd_signal(args, settings: Settings) -> int:
    from services.signal_inbox import post_signal
    from services.signal_message import SignalError, read_signal, read_signal_json
    from services.store.inboxes import InboxStatus
    from services.store.sql import StoreError, database_busy

    from_json = args.json_file is not None
    given = {f: getattr(args, f) for f in _SIGNAL_FIELDS if getattr(args, f) is not None}
    if from_json and given:
        raise UsageError("give the signal either as --json or as --strategy/--symbol/--action/..., not both")
    if not from_json and args.strategy is None:
        raise UsageError("signal: --strategy is required (or --json FILE|-)")
    problems = [] if args.wait >= 0 else [f"--wait: must be 0 or more seconds, got {args.wait:g}"]
    body = _signal_body(args.json_file) if from_json else b""
    try:
        message = read_signal_json(body, settings) if from_json else read_signal(given, settings)
    except SignalError as exc:
        where = f" (JSON on {_json_source(args.json_file)})" if from_json else ""
        if problems:  # a bad option as well: nothing is recorded
            raise UsageError(f"signal not recorded{where}:\n  " + "\n  ".join(exc.problems + problems)) from None
        # the signal arrived and was refused: recorded as rejected with its reasons, like the engine's
        raise UsageError(f"signal {_record_rejected(settings, exc.strategy, exc.problems)}{where}:\n  "
                         + "\n  ".join(exc.problems)) from None
    if problems:
        raise UsageError("signal not recorded:\n  " + "\n  ".join(problems))
    url = _shared_url(settings)
    try:
        inbox_id = post_signal(url, message, time.time())
    except StoreError as exc:
        if database_busy(exc):
            raise
        raise UsageError(f"cannot record the signal in {url}: {str(exc).splitlines()[0]}") from None
    print(f"recorded signal #{inbox_id}: {message.describe()}", flush=True)
    row = _wait_for_signal(url, inbox_id, args.wait)
    ttl = settings.engine.signal_ttl_s
    if not args.wait:
        print(f"a running engine takes it within a second, or the next one to start, unless it is older than "
              f"signal_ttl_s ({ttl:g} s) by then")
    elif row is None or row["status"] == InboxStatus.PENDING:
        print(f"no engine took it within {args.wait:g} s — it is handled when an engine starts, unless older "
              f"than signal_ttl_s ({ttl:g} s)")
    else:  # taken, rejected or expired: what the engine did with it
        print(f"{row['status']}: {row['outcome']}")
        return 0 if row["status"] == InboxStatus.TAKEN else 1  # refused by the engine, like levels / exit
    return 0


def _record_rejected(settings: Settings, strategy: str, problems: list[str]) -> str:
    """Record a refused signal with its reasons; say whether it could be."""
    from services.signal_inbox import post_rejected
    from services.store.sql import StoreError

    url = _shared_url(settings)
    try:
        return f"rejected (recorded as #{post_rejected(url, strategy, problems, time.time())})"
    except StoreError as exc:
        return f"rejected (and not recorded: {str(exc).splitlines()[0]})"


def _wait_for_signal(url: str, inbox_id: int, wait_s: float) -> dict | None:
    from services.signal_inbox import read_inbox_row
    from services.store import open_store_readonly

    if wait_s <= 0:
        return None
    eng = open_store_readonly(url)
    try:
        return _wait_for_answer(eng, read_inbox_row, inbox_id, wait_s)
    finally:
        eng.dispose()


def _wait_for_answer(eng, read, row_id: int, wait_s: float) -> dict | None:
    """Poll an inbox row until it is no longer pending or wait_s have passed; the last read."""
    from services.store.inboxes import InboxStatus
    from services.store.sql import StoreError

    deadline = time.monotonic() + wait_s
    row = None
    while True:
        try:
            row = read(eng, row_id)
        except StoreError as exc:  # recorded already; only the answer is missing
            log.warning("reading #%d back failed: %s", row_id, exc)
        if (row is not None and row["status"] != InboxStatus.PENDING) or time.monotonic() >= deadline:
            return row
        time.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))


def _json_source(source: str) -> str:
    return "stdin" if source == "-" else source


def _signal_body(source: str) -> bytes:
    """The JSON's bytes, as a webhook receives them (read_signal_json decodes and checks them);
    past the size limit only one more byte is read, for it to be refused."""
    try:
        if source == "-":
            return sys.stdin.buffer.read(MAX_BODY_BYTES + 1)
        with open(source, "rb") as file:
            return file.read(MAX_BODY_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"--json {source}: cannot be read ({exc.strerror})") from None


# -- levels, exit, check-exits: the operator's commands from the shell -------------------------

NO_ENGINE = "no engine is running; start one with `make run` or `tui-trader engine`; nothing was changed"
TAKEN_GRACE_S = 5.0
"""How much longer than --wait to wait for the outcome of a command an engine took just in time."""


def cmd_levels(args, settings: Settings) -> int:
    group_id = _position_id(args.position)
    levels, problems = _level_edits(args, settings, time.time())
    problems += _wait_problems(args.wait)
    if not levels and not problems:
        problems.append("nothing to change: give --stop, --target, --trail, --trail-activation or --time-exit")
    if problems:
        raise UsageError(f"levels of #{group_id} not changed:\n  " + "\n  ".join(problems))
    url = _shared_url(settings)
    _require_open(_open_legs(url), group_id)
    command = {"group_id": group_id, **levels}
    if args.leg is not None:
        command["leg_id"] = args.leg
    if args.yes:
        command["confirm"] = True
    return _send_command(url, "levels", command, args.wait)


def cmd_exit(args, settings: Settings) -> int:
    if sum((args.position is not None, args.strategy is not None, args.all)) != 1:
        raise UsageError("exit: give one of POSITION, --strategy ID or --all")
    problems = _wait_problems(args.wait)
    if problems:
        raise UsageError("exit: " + "; ".join(problems))
    url = _shared_url(settings)
    legs = _open_legs(url)
    ask = None
    if args.position is not None:
        group_id = _position_id(args.position)
        _require_open(legs, group_id)
        command: dict = {"group_id": group_id}
    elif args.strategy is not None:
        known = set(settings.strategies) | {r["strategy_id"] for r in legs}
        if args.strategy not in known:
            raise UsageError(f"unknown strategy {args.strategy!r} (known: {', '.join(sorted(known)) or 'none'})")
        command = {"strategy": args.strategy}
    else:
        if not args.yes and not sys.stdin.isatty():
            raise UsageError("exit --all exits every open position: confirm it with --yes")
        if not legs:
            print("there is no open position to exit; nothing was changed", file=sys.stderr)
            return 1
        if not args.yes:
            ask = functools.partial(_confirm_exit_all, legs)  # asked once an engine is known to run
        command = {"all": True}
    return _send_command(url, "exit", command, args.wait, ask)


def cmd_pause(args, settings: Settings) -> int:
    """pause / resume: a strategy's entries, or with --all the book-wide entry switch."""
    if (args.strategy is not None) == args.all:
        raise UsageError(f"{args.command}: give one of STRATEGY or --all")
    problems = _wait_problems(args.wait)
    if args.strategy is not None and args.strategy not in settings.strategies:
        problems.append(f"unknown strategy {args.strategy!r} (known: {', '.join(sorted(settings.strategies)) or 'none'})")
    if problems:
        raise UsageError(f"{args.command}: " + "; ".join(problems))
    command = {"all": True} if args.all else {"strategy": args.strategy}
    return _send_command(_shared_url(settings), args.command, command, args.wait)


def _confirm_exit_all(legs: list[dict]) -> bool:
    groups = sorted({r["group_id"] for r in legs})
    print(f"this exits every open position ({len(groups)}: {', '.join(f'#{g}' for g in groups)}) at market")
    try:
        return input("type EXIT to confirm: ").strip() == "EXIT"
    except EOFError:
        return False


def _send_command(url: str, kind: str, command: dict, wait_s: float, ask=None) -> int:
    """Post a command for the running engine and report its answer (see services/command_inbox.py)."""
    from services import command_inbox
    from services.store import open_store_readonly
    from services.store.inboxes import InboxStatus
    from services.store.sql import StoreError, database_busy, engine_running

    if engine_running(url) is False:
        print(f"tui-trader: {NO_ENGINE}", file=sys.stderr)
        return 1
    if ask is not None and not ask():
        print("not confirmed; nothing was changed", file=sys.stderr)
        return 1
    try:
        command_id = command_inbox.post_command(url, kind, command, time.time(), wait_s)
    except StoreError as exc:
        if database_busy(exc):
            raise
        raise UsageError(f"cannot record the command in {url}: {str(exc).splitlines()[0]}") from None
    eng = open_store_readonly(url)
    try:
        try:
            row = _wait_for_answer(eng, command_inbox.read_command, command_id, wait_s)
        except KeyboardInterrupt:  # the operator gave up: the command must not run later
            if command_inbox.cancel_command(eng, command_id, "cancelled: interrupted by the operator"):
                print("tui-trader: interrupted; the command was cancelled, nothing was changed", file=sys.stderr)
            else:
                print("tui-trader: interrupted, but the engine had already taken the command; see "
                      "`tui-trader positions`", file=sys.stderr)
            raise
        if row is None or row["status"] == InboxStatus.PENDING:
            if command_inbox.cancel_command(eng, command_id, f"cancelled: no engine took it within {wait_s:g} s"):
                print(f"tui-trader: no engine answered within {wait_s:g} s; the command was cancelled, nothing was "
                      "changed", file=sys.stderr)
                return 1
            row = _wait_for_answer(eng, command_inbox.read_command, command_id, TAKEN_GRACE_S)  # taken just in time
    finally:
        eng.dispose()
    if row is None or row["status"] == InboxStatus.PENDING:
        print("tui-trader: the engine took the command but has not recorded what it did yet; check "
              "`tui-trader positions`", file=sys.stderr)
        return 1
    if row["status"] == InboxStatus.DONE:
        print(row["outcome"])
        return 0
    print(f"tui-trader: {row['status']}: {row['outcome']}", file=sys.stderr)
    if row["needs_confirm"]:
        print("  nothing was changed; pass --yes to apply it anyway", file=sys.stderr)
    return 1


def _position_id(raw: str) -> int:
    text = raw.strip().removeprefix("#")
    if not text.isdecimal() or not text.isascii() or int(text) == 0:
        raise UsageError(f"POSITION: expected a position number like 3 (the # in the TUI and `tui-trader positions`), "
                         f"got {raw!r}")
    return int(text)


def _open_legs(url: str) -> list[dict]:
    from services.store.read_models import read_open_positions

    return read_open_positions(url)


def _require_open(legs: list[dict], group_id: int) -> None:
    open_ids = sorted({r["group_id"] for r in legs})
    if group_id not in open_ids:
        known = f"open: {', '.join(f'#{g}' for g in open_ids)}" if open_ids else "there are no open positions"
        raise UsageError(f"no open position #{group_id} ({known}); nothing was changed")


def _shared_url(settings: Settings) -> str:
    from services.store.urls import is_shared_url

    url = settings.store.url
    if not is_shared_url(url):
        raise UsageError(f"store.url {url!r} is an in-memory database no engine can read; use a file or a server")
    return url


def _wait_problems(wait_s: float) -> list[str]:
    return [] if wait_s > 0 else [f"--wait: must be more than 0 seconds, got {wait_s:g}"]


_NONE = "none"


def _level_edits(args, settings: Settings, now: float) -> tuple[dict, list[str]]:
    """The edits asked for, as Engine.edit_levels keywords (None removes a level), and one
    line per bad value; read like the TUI's edit form reads them (services.level_input).
    The engine checks them against the mark."""
    from services.level_input import parse_activation, parse_price, parse_time_exit, parse_trail

    edits: dict = {}
    problems = []
    for option, name, parse in (
        ("--stop", "stop", parse_price), ("--target", "target", parse_price),
        ("--trail", "trail_distance", parse_trail), ("--trail-activation", "trail_activation", parse_activation),
        ("--time-exit", "time_exit_at", lambda raw: parse_time_exit(raw, now)),
    ):
        raw = getattr(args, option[2:].replace("-", "_"))
        if raw is None:
            continue
        removes = raw.strip().lower() == _NONE and name != "trail_activation"
        try:
            edits[name] = None if removes else parse(raw if raw.strip() else "?")
        except ValueError as exc:
            problems.append(f"{option} {raw!r}: {exc}" + ("; none removes it" if name != "trail_activation" else ""))
    return edits, problems


# -- check-exits ------------------------------------------------------------------------------

def cmd_check_exits(args, settings: Settings) -> int:
    from services.exit_check import check_exits
    from services.store.read_models import read_pnl_state
    from services.store.sql import engine_running

    url = settings.store.url
    now = time.time()
    check = check_exits(settings, _open_legs(url), read_pnl_state(url), now)
    if args.json:
        print(json.dumps([_trigger_json(r, t) for r, t in check.triggers] + [_rule_json(v) for v in check.rules],
                         indent=1))
        return 0
    _print_check_exits(settings, check, now, engine_running(url) is False)
    return 0


def _trigger_json(row: dict, t) -> dict:
    return {"what": "position", "group_id": t.group_id, "leg_id": row["id"], "strategy_id": row["strategy_id"],
            "symbol": t.symbol, "side": row["side"], "kind": t.kind, "level": t.level, "mark": row["mark"],
            "mark_ts": row["mark_ts"], "distance": t.distance, "distance_pct": t.distance_pct}


def _rule_json(v) -> dict:
    return {"what": "pnl_rule", "scope": v.scope, "kind": v.kind, "level": v.level, "pnl": v.pnl,
            "distance": v.distance, "armed": v.armed, "arms_at": v.arms_at, "peak": v.peak, "fired_at": v.fired_at}


def _print_check_exits(settings: Settings, check, now: float, stopped: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from screens.format import clock_time, countdown, money, px, side_word
    from services.rules.pnl_scopes import RULE_LABEL
    from services.views import TRIGGER_LABEL, TriggerKind

    tz = settings.book.timezone
    console = Console(width=None if sys.stdout.isatty() else 200)
    if stopped:
        console.print("no engine is running: marks and P&L as last stored", style="yellow")
    triggers, rules, exiting = check.triggers, check.rules, check.exiting
    if triggers:
        table = Table(box=None, title="position exits, closest first", title_justify="left")
        for col in ("#", "strategy", "symbol", "side", "trigger", "level", "mark", "distance", "%"):
            table.add_column(col, justify="right" if col in ("#", "level", "mark", "distance", "%") else "left")
        for row, t in triggers:
            if t.kind == TriggerKind.TIME:
                level, distance, pct = clock_time(t.level, tz), countdown(t.level, now, due="due"), ""
            else:
                level = px(t.level)
                distance = f"{t.distance:,.2f}" if abs(t.distance) >= 1 else f"{t.distance:.4g}"
                pct = "—" if t.distance_pct is None else f"{t.distance_pct:.2f}%"
            table.add_row(str(t.group_id), row["strategy_id"], t.symbol, side_word(row["side"]),
                          TRIGGER_LABEL.get(t.kind, t.kind), level, px(row["mark"]), distance, pct)
        console.print(table)
    elif not exiting:
        console.print("no open position has an exit trigger" if check.open_legs else "no open positions")
    for row in exiting:
        console.print(f"#{row['group_id']} {row['symbol']} is exiting ({row['pending_exit']})")
    if rules:
        table = Table(box=None, title="P&L rules, closest first", title_justify="left")
        for col in ("scope", "rule", "acts at P&L", "P&L", "distance", "state"):
            table.add_column(col, justify="left" if col in ("scope", "rule", "state") else "right")
        for v in rules:
            if v.fired_at is not None:
                state = f"fired {clock_time(v.fired_at, tz)}"
            elif not v.armed:
                state = f"arms at P&L {money(v.arms_at or 0.0)}"
            else:
                state = "armed" if v.kind == "pnl_trailing" else ""
            table.add_row(v.scope, RULE_LABEL.get(v.kind, v.kind), "—" if v.level is None else money(v.level),
                          money(v.pnl), "—" if v.distance is None else f"{v.distance:,.2f}", state)
        console.print(table)


COMMANDS = {"run": cmd_run, "engine": cmd_engine, "replay": cmd_replay, "positions": cmd_positions,
            "signal": cmd_signal, "levels": cmd_levels, "exit": cmd_exit, "pause": cmd_pause, "resume": cmd_pause,
            "check-exits": cmd_check_exits,
            "logs": cli_logs.cmd_logs}
