"""Which settings file and data directory are in use (issue 12): the first log line and the
help screen name them; starting where there is no settings.toml runs the demo with a notice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from textual.widgets import Static

from services.store.urls import safe_url
from tests.test_tui import SIZE, advance, app, engine, text_of  # noqa: F401  (fixtures)
from tui_trader.locations import PROJECT_SETTINGS, demo_notice


def test_the_demo_notice_only_when_no_settings_of_the_operators_were_found(tmp_path, monkeypatch):
    monkeypatch.delenv("TUI_TRADER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    notice = demo_notice(PROJECT_SETTINGS, None)
    assert notice.startswith(f"no settings.toml in {tmp_path}: running the paper demo's settings")
    assert demo_notice(PROJECT_SETTINGS, str(PROJECT_SETTINGS)) == ""  # asked for explicitly
    (tmp_path / "settings.toml").write_text("")
    assert demo_notice(tmp_path / "settings.toml", None) == ""


def test_a_database_password_is_never_shown():
    assert safe_url("postgresql://trader:s3cret@db.example/tt") == "postgresql://trader:***@db.example/tt"
    assert safe_url("::nonsense") == "(an invalid database URL)"


def test_the_first_log_line_names_the_settings_and_the_data_directory(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tui_trader", "positions"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env={"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    first = json.loads((tmp_path / "tui_trader.log").read_text().splitlines()[0])
    assert first["event"] == (f"tui-trader positions: settings {PROJECT_SETTINGS}; data directory {tmp_path}; "
                              f"database sqlite:///{tmp_path}/tui_trader.db")


def test_the_headless_engine_says_it_runs_the_demo_settings(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "tui_trader", "engine"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    try:
        line = proc.stderr.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert line.startswith(f"tui-trader: no settings.toml in {tmp_path}: running the paper demo's settings"), line


async def test_help_names_the_settings_file_the_data_directory_and_the_log(app, engine):  # noqa: F811
    app.settings_path = Path("/etc/tui/settings.toml")
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        await pilot.press("question_mark")
        shown = "".join(text_of(app.screen.query_one(Static)).split())  # as wrapped in its column
        for part in ("settings: /etc/tui/settings.toml · data: ", f"log: {app.log_path}"):
            assert "".join(part.split()) in shown, part


async def test_the_notice_is_flashed_at_the_start(app, engine):  # noqa: F811
    app.notice = "no settings.toml in /tmp: running the paper demo's settings"
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, 1)
        assert any(n.message == app.notice for n in app._notifications)
