"""The signals file of a replay (`replay --signals FILE`): timed TradingView-style signals, as
CSV (header ts,strategy,symbol,action[,price,size,timeframe,comment]) or as JSON lines
({"ts": ..., plus the JSON body `tui-trader signal --json` takes}). Each row is read and
checked by services/signal_message.py, the same as a webhook or the CLI signal, so a replay
takes exactly the signals the running engine would."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .config import TradingConfig
from .replay import BadFile, BadRow, not_utf8, parse_ts
from .signal_message import SignalError, SignalMessage, read_signal

CSV_REQUIRED = ("ts", "strategy", "symbol", "action")
CSV_OPTIONAL = ("price", "size", "timeframe", "comment")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass(frozen=True, slots=True)
class TimedSignal:
    line: int
    ts: float
    message: SignalMessage


def read_signals(path: str, config: TradingConfig, skip_bad: bool = False,
                 bad_rows: list[BadRow] | None = None) -> list[TimedSignal]:
    """Every signal in the file, in time order (signals at the same ts in file order). A bad
    row raises BadRow, or with skip_bad is appended to bad_rows and skipped; a file that is
    not UTF-8 text raises BadFile."""
    signals = []
    try:
        for line, data in _json_rows(path) if _is_json(path) else _csv_rows(path):
            try:
                if isinstance(data, str):  # a row that is unreadable as it stands
                    raise ValueError(data)
                raw_ts = data.pop("ts", None)
                if raw_ts is None or raw_ts == "":
                    raise ValueError("ts: missing; give the signal's time (epoch seconds or ISO-8601)")
                if isinstance(raw_ts, bool) or not isinstance(raw_ts, (int, float, str)):
                    raise ValueError(f"ts: must be epoch seconds or ISO-8601, got {json.dumps(raw_ts)}")
                signals.append(TimedSignal(line, parse_ts(str(raw_ts)), read_signal(data, config)))
            except (ValueError, SignalError) as exc:
                problems = exc.problems if isinstance(exc, SignalError) else [str(exc)]
                bad = BadRow(line, "; ".join(problems))
                if not skip_bad:
                    raise bad from None
                if bad_rows is not None:
                    bad_rows.append(bad)
    except UnicodeDecodeError:
        raise BadFile(not_utf8(path)) from None
    return sorted(signals, key=lambda s: s.ts)  # stable: file order within one ts


def _is_json(path: str) -> bool:
    """By the extension; otherwise a file whose first non-blank character opens an object."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv" or suffix in JSON_SUFFIXES:
        return suffix != ".csv"
    with open(path, encoding="utf-8") as fh:
        return fh.read(4096).lstrip().startswith("{")


def _json_rows(path: str) -> Iterator[tuple[int, dict | str]]:
    with open(path, encoding="utf-8") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                yield line, f"not valid JSON ({exc}); expected one object per line"
                continue
            yield line, data if isinstance(data, dict) else f"must be a JSON object, got {text.strip()[:60]}"


def _csv_rows(path: str) -> Iterator[tuple[int, dict | str]]:
    """Each row as the JSON body it stands for: its non-empty cells by column name."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader, [])]
        except csv.Error as exc:
            raise BadRow(1, str(exc)) from None
        missing = [c for c in CSV_REQUIRED if c not in header]
        unknown = [c for c in header if c not in CSV_REQUIRED + CSV_OPTIONAL]
        if missing or unknown:
            parts = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
                [f"unknown column(s) {', '.join(unknown)}"] if unknown else [])
            raise BadRow(1, "; ".join(parts) + f"; expected {','.join(CSV_REQUIRED)} and optionally "
                         f"{','.join(CSV_OPTIONAL)}")
        rows = enumerate(reader, start=2)
        while True:
            try:
                line, row = next(rows)
            except StopIteration:
                return
            except csv.Error as exc:  # e.g. a field over the csv module's limit: the row is bad
                yield reader.line_num, str(exc)
                rows = enumerate(reader, start=reader.line_num + 1)
                continue
            if not row:
                continue
            if len(row) != len(header):
                yield line, f"{len(row)} fields, the header has {len(header)}"
            else:
                yield line, {col: cell.strip() for col, cell in zip(header, row) if cell.strip()}
