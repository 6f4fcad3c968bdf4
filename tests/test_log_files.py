"""The log file: one JSON object per line (time, level, logger, event, context, traceback),
rotated by size, written by a listener thread and complete at exit; engine events mirrored
into it."""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import Harness, config
from tui_trader.logs import EVENTS_LOGGER, mirror_events, setup_logging, stop_logging

log = logging.getLogger("tui_trader.test")


@pytest.fixture(autouse=True)
def restore_logging():
    """Whatever a test installs, the root logger is as before for the next test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    alembic = logging.getLogger("alembic").level
    yield
    stop_logging()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(alembic)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_line_is_a_json_object_with_time_level_logger_event_and_context(tmp_path):
    path = tmp_path / "tui_trader.log"
    setup_logging("info", path=path)
    log.info("order %s filled", "#12", extra={"context": {"order": 12, "price": 101.5}})
    log.warning("no context here")
    stop_logging()
    first, second = lines(path)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["time"])
    assert {k: v for k, v in first.items() if k != "time"} == {
        "level": "info", "logger": "tui_trader.test", "event": "order #12 filled",
        "context": {"order": 12, "price": 101.5}}
    assert "context" not in second and second["level"] == "warning"


def test_a_logged_exception_keeps_its_traceback_in_the_file(tmp_path):
    path = tmp_path / "tui_trader.log"
    setup_logging("info", path=path)
    try:
        {}["missing"]
    except KeyError:
        log.exception("internal error")
    stop_logging()
    [line] = lines(path)
    assert line["event"] == "internal error" and line["level"] == "error"
    assert line["traceback"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in line["traceback"]


def test_lines_below_the_level_are_not_written(tmp_path):
    path = tmp_path / "tui_trader.log"
    setup_logging("warning", path=path)
    log.info("routine")
    log.warning("worth knowing")
    stop_logging()
    assert [line["event"] for line in lines(path)] == ["worth knowing"]


def test_the_file_rotates_by_size_and_every_line_stays_valid_json(tmp_path):
    path = tmp_path / "tui_trader.log"
    setup_logging("info", path=path, max_bytes=400, backups=2)
    for n in range(40):
        log.info("line %d", n, extra={"context": {"n": n}})
    stop_logging()
    rotated = [path, path.with_name("tui_trader.log.1"), path.with_name("tui_trader.log.2")]
    assert all(p.exists() for p in rotated) and not path.with_name("tui_trader.log.3").exists()
    for p in rotated:
        assert lines(p) and all(len(line) <= 400 for line in p.read_text().splitlines())
    assert lines(path)[-1]["event"] == "line 39"


def test_the_file_is_written_by_a_thread_not_the_caller(tmp_path, monkeypatch):
    writers: list[int] = []
    emit = logging.handlers.RotatingFileHandler.emit

    def recording_emit(handler, record):
        writers.append(threading.get_ident())
        emit(handler, record)

    monkeypatch.setattr(logging.handlers.RotatingFileHandler, "emit", recording_emit)
    setup_logging("info", path=tmp_path / "tui_trader.log")
    log.info("from the event loop's thread")
    stop_logging()
    assert writers and threading.get_ident() not in writers


def test_stop_writes_everything_still_queued(tmp_path):
    path = tmp_path / "tui_trader.log"
    setup_logging("info", path=path)
    for n in range(2000):
        log.info("line %d", n)
    stop_logging()
    assert [line["event"] for line in lines(path)] == [f"line {n}" for n in range(2000)]


def test_the_last_line_before_the_process_exits_is_in_the_file(tmp_path):
    path = tmp_path / "tui_trader.log"
    script = (
        "import logging, sys\n"
        "from pathlib import Path\n"
        "from tui_trader.logs import setup_logging\n"
        "setup_logging('info', path=Path(sys.argv[1]))\n"
        "for n in range(500):\n"
        "    logging.getLogger('tui_trader.x').info('line %d', n)\n"
        "logging.getLogger('tui_trader.x').info('last words')\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60,
                   cwd=Path(__file__).resolve().parents[1])
    written = lines(path)
    assert len(written) == 501 and written[-1]["event"] == "last words"


def test_setting_up_twice_installs_one_set_of_handlers(tmp_path):
    root = logging.getLogger()
    before = len(root.handlers)
    setup_logging("info", to_stdout=True, path=tmp_path / "first.log")
    setup_logging("info", to_stdout=True, path=tmp_path / "second.log")
    assert len(root.handlers) == before + 2  # the file's queue and the console
    log.info("once")
    stop_logging()
    assert len(root.handlers) == before
    assert [line["event"] for line in lines(tmp_path / "second.log")] == ["once"]
    assert lines(tmp_path / "first.log") == []


def test_engine_events_are_mirrored_at_their_level_with_their_references(tmp_path):
    path = tmp_path / "tui_trader.log"
    setup_logging("info", path=path)
    h = Harness(config())
    mirror_events(h.engine)
    h.engine.note("warning", "signal", "signal #3 rejected: unknown symbol", strategy_id="trend",
                  payload={"inbox_id": 3})
    h.engine.note("critical", "store", "database write failed", needs_ack=True)
    stop_logging()
    rejected, failed = [line for line in lines(path) if line["logger"] == EVENTS_LOGGER]
    ids = [e.id for e in h.engine.events][-2:]
    assert (rejected["level"], rejected["event"]) == ("warning", "signal #3 rejected: unknown symbol")
    assert rejected["context"] == {"id": ids[0], "category": "signal", "strategy": "trend", "alert": False,
                                   "payload": {"inbox_id": 3}}
    assert (failed["level"], failed["event"]) == ("critical", "database write failed")
    assert failed["context"] == {"id": ids[1], "category": "store", "alert": True}


def test_the_console_gets_warnings_but_not_the_events_the_engine_prints_itself(tmp_path, capsys):
    setup_logging("info", to_stdout=True, path=tmp_path / "tui_trader.log")
    log.info("routine")
    log.warning("disk nearly full")
    logging.getLogger(EVENTS_LOGGER).warning("feed down")
    stop_logging()
    assert capsys.readouterr().err == "WARNING tui_trader.test: disk nearly full\n"


def test_an_unwritable_log_file_falls_back_to_stderr_and_says_so(tmp_path, capsys):
    (tmp_path / "not-a-dir").write_text("")
    path = tmp_path / "not-a-dir" / "tui_trader.log"
    setup_logging("info", path=path)
    log.warning("still reported")
    stop_logging()
    err = capsys.readouterr().err
    assert f"cannot write the log file {path}" in err
    assert json.loads(err.splitlines()[-1])["event"] == "still reported"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device that is always full")
def test_a_full_disk_is_said_once_in_one_line_not_a_traceback_per_record(capfd):
    setup_logging("info", path=Path("/dev/full"))  # every write fails with ENOSPC, as on a full disk
    for i in range(500):
        log.warning("line %d", i)
    stop_logging()
    assert capfd.readouterr().err.splitlines() == [
        "tui-trader: cannot write /dev/full (No space left on device); log lines are lost until it works again (said "
        "again at most every 10 minutes)"]
