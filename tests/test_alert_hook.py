"""The alert hook: a shell command run for every new alert with the alert as JSON on stdin;
time-limited, its failures logged and raised as warnings (never alerts), never blocking the
engine. Real subprocesses; the test waits on conditions, never on a fixed delay."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import sys
from pathlib import Path

import psutil
import pytest

from services import alert_hook
from services.alert_hook import AlertHook
from services.event_log import event_dict
from tests.conftest import Harness, config

PYTHON = shlex.quote(sys.executable)

COPY_STDIN = """
import json, os, sys
data = sys.stdin.read()
out = os.path.join(sys.argv[1], str(json.loads(data)["id"]))
open(out + ".tmp", "w").write(data)
os.replace(out + ".tmp", out)
"""

FAIL = """
import sys
sys.stdin.read()
sys.stderr.write("pager unreachable\\n")
sys.exit(3)
"""

GATED = """
import json, os, sys, time
folder = sys.argv[1]
alert = json.loads(sys.stdin.read())["id"]
open(os.path.join(folder, f"started-{alert}"), "w").write(str(os.getpgid(0)))
while not os.path.exists(os.path.join(folder, "gate")):
    time.sleep(0.01)
open(os.path.join(folder, f"done-{alert}"), "w").close()
"""


def python(script: str, *args: object) -> str:
    return " ".join([PYTHON, "-c", shlex.quote(script), *(shlex.quote(str(a)) for a in args)])


async def until(condition, what: str) -> None:
    try:
        async with asyncio.timeout(30):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


def alert(h: Harness, message: str = "feed down", **payload):
    h.engine.note("error", "feed", message, needs_ack=True, payload=payload or None)
    return h.engine.events[-1]


def hook_events(h: Harness) -> list:
    return [e for e in h.engine.events if e.category == "alerts"]


def files(folder: Path, prefix: str) -> set[int]:
    return {int(p.name[len(prefix):]) for p in folder.glob(f"{prefix}*")}


def group_alive(pgid: int) -> bool:
    """Whether a process of this group still runs (a killed one takes a moment to exit)."""
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return False


@pytest.fixture
async def started():
    """Hooks started on a fresh engine; each is stopped at the end of the test."""
    hooks: list[AlertHook] = []

    async def start(command: str, timeout_s: float = 10.0, **caps) -> tuple[Harness, AlertHook]:
        h = Harness(config())
        hook = AlertHook(command, timeout_s, **caps)
        await hook.start(h.engine)
        hooks.append(hook)
        return h, hook

    yield start
    for hook in hooks:
        await hook.stop()


async def test_the_command_gets_the_alert_as_one_json_line_on_stdin(started, tmp_path):
    h, _ = await started(python(COPY_STDIN, tmp_path))
    view = alert(h, "feed binance is down", feed="binance")
    await until(lambda: (tmp_path / str(view.id)).exists(), "the hook's output")
    text = (tmp_path / str(view.id)).read_text()
    assert text.endswith("\n") and text.count("\n") == 1
    sent = json.loads(text)
    assert sent == event_dict(view)
    assert (sent["id"], sent["level"], sent["message"], sent["payload"]) == (
        view.id, "error", "feed binance is down", {"feed": "binance"})
    assert hook_events(h) == []  # a success raises nothing


async def test_events_that_are_not_alerts_run_nothing(started, tmp_path):
    h, hook = await started(python(COPY_STDIN, tmp_path))
    h.engine.note("warning", "feed", "ETHUSDT stale")
    h.engine.note("info", "engine", "engine started")
    view = alert(h)
    await until(lambda: (tmp_path / str(view.id)).exists(), "the alert's hook")
    await hook.stop()  # waits for anything still running
    assert [p.name for p in tmp_path.iterdir()] == [str(view.id)]


async def test_a_failing_command_becomes_a_warning_with_its_exit_code_and_stderr(started, caplog):
    caplog.set_level(logging.WARNING, logger="tui_trader.alert_hook")
    h, _ = await started(python(FAIL))
    view = alert(h)
    await until(lambda: hook_events(h), "the failure event")
    [warning] = hook_events(h)
    assert warning.level == "warning"
    assert f"alert #{view.id}" in warning.message and "(exit 3: pager unreachable)" in warning.message
    assert not warning.needs_ack and h.engine.unread_alerts == 1  # not an alert: no loop on itself
    [record] = [r for r in caplog.records if r.name == "tui_trader.alert_hook"]
    assert record.context["alert_id"] == view.id and record.context["failure"] == "exit 3: pager unreachable"


async def test_a_command_that_cannot_start_is_reported(started, monkeypatch):
    async def no_process(*args, **kwargs):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(asyncio, "create_subprocess_shell", no_process)
    h, _ = await started("true")
    view = alert(h)
    await until(lambda: hook_events(h), "the failure event")
    assert hook_events(h)[0].message == f"alert hook failed for alert #{view.id} (cannot start: Too many open files)"


async def test_a_command_past_its_timeout_is_killed_with_its_children(started, tmp_path):
    pid_file = tmp_path / "pgid"
    # The shell records its pid (the group's id) and waits on a child that sleeps a minute,
    # deaf to SIGTERM.
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    sleeper = f"{python(stubborn)}; echo finished > {tmp_path / 'finished'}"
    h, _ = await started(f"echo $$ > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}; {sleeper}", timeout_s=0.5)
    view = alert(h)
    await until(lambda: hook_events(h), "the timeout event")
    assert hook_events(h)[0].message == f"alert hook failed for alert #{view.id} (timed out after 0.5 s; killed)"
    pgid = int(pid_file.read_text())
    await until(lambda: not group_alive(pgid), "the killed command and its child to be gone")
    assert not (tmp_path / "finished").exists()


async def test_the_engine_goes_on_while_the_command_runs(started, tmp_path):
    h, _ = await started(python(GATED, tmp_path))
    view = alert(h)
    assert not (tmp_path / f"started-{view.id}").exists()  # the listener only queued it
    await until(lambda: (tmp_path / f"started-{view.id}").exists(), "the command to start")
    h.quote("BTCUSDT", 101.0)  # the engine takes quotes and events while the command waits
    h.engine.note("info", "engine", "still here")
    assert h.engine.events[-1].message == "still here"
    assert not (tmp_path / f"done-{view.id}").exists()
    (tmp_path / "gate").touch()
    await until(lambda: (tmp_path / f"done-{view.id}").exists(), "the command to finish")


async def test_beyond_the_running_and_waiting_caps_alerts_are_dropped_and_counted_once(started, tmp_path):
    (tmp_path / "gate").touch()
    h, hook = await started(python(GATED, tmp_path), max_running=2, max_waiting=3)
    views = [alert(h, f"alert {n}") for n in range(7)]
    delivered = {v.id for v in views[:5]}
    await until(lambda: files(tmp_path, "done-") == delivered, "the five alerts that fit")
    await until(lambda: any("skipped" in e.message for e in hook_events(h)), "the drop warning")
    await hook.stop()
    [dropped] = hook_events(h)
    assert dropped.message.startswith("alert hook skipped 2 alert(s)") and dropped.payload == {"dropped": 2}
    assert files(tmp_path, "started-") == delivered


async def test_stop_kills_running_commands_and_reports_the_waiting_ones(started, tmp_path, monkeypatch):
    monkeypatch.setattr(alert_hook, "STOP_GRACE_S", 0.2)  # shorter than the commands' own timeout
    h, hook = await started(python(GATED, tmp_path), max_running=2, max_waiting=3)
    views = [alert(h, f"alert {n}") for n in range(6)]
    running = {v.id for v in views[:2]}
    await until(lambda: files(tmp_path, "started-") == running, "the first two commands")
    await hook.stop()
    messages = [e.message for e in hook_events(h)]
    assert messages == [
        (f"alert hook not completed for alert #{views[0].id}, alert #{views[1].id}: still running when the engine "
         "stopped; killed"),
        "alert hook not run for 3 waiting alert(s): the engine stopped first",
        "alert hook skipped 1 alert(s): 2 commands were running and 3 alerts waiting",
    ]
    assert files(tmp_path, "started-") == running and files(tmp_path, "done-") == set()
    groups = [int((tmp_path / f"started-{i}").read_text()) for i in running]
    await until(lambda: not any(group_alive(g) for g in groups), "the killed commands to be gone")
    alert(h, "after the stop")  # no longer listening
    assert len(hook_events(h)) == 3


async def test_a_command_killed_by_a_signal_says_which(started):
    h, _ = await started("kill -TERM $$")
    view = alert(h)
    await until(lambda: hook_events(h), "the failure event")
    assert hook_events(h)[0].message == f"alert hook failed for alert #{view.id} (killed by signal 15)"


async def test_alerts_raised_while_the_engine_started_are_delivered_but_not_older_ones(db_url, tmp_path):
    from services.clock import FakeClock
    from tui_trader.wiring import build_engine
    from services.store import SqlStore

    first = Harness(config(), store=SqlStore(db_url))
    first.engine.note("error", "feed", "an alert of the previous run", needs_ack=True)
    first.engine.store.close()
    engine = build_engine(config(), FakeClock(first.clock.now() + 1), SqlStore(db_url))
    engine.open()
    engine.note("critical", "recovery", "an alert raised at start", needs_ack=True)  # before attachments start
    hook = AlertHook(python(COPY_STDIN, tmp_path), 10.0)
    await hook.start(engine)
    try:
        [at_start] = [e for e in engine.events if e.message == "an alert raised at start"]
        await until(lambda: (tmp_path / str(at_start.id)).exists(), "the start-up alert's hook")
        assert {int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()} == {at_start.id}
    finally:
        await hook.stop()
        engine.store.close()
