"""Where things live on disk."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

PROJECT_SETTINGS = Path(__file__).resolve().parent.parent / "settings.toml"


def data_dir() -> Path:
    """TUI_TRADER_DATA_DIR, else the user's data directory (e.g. ~/.local/share/tui-trader)."""
    override = os.environ.get("TUI_TRADER_DATA_DIR")
    return Path(override).expanduser() if override else Path(platformdirs.user_data_dir("tui-trader"))


def default_db_url() -> str:
    return f"sqlite:///{data_dir() / 'tui_trader.db'}"


def log_file(configured: str = "") -> Path:
    """logs.file when set, else tui_trader.log in the data directory."""
    return Path(configured).expanduser() if configured else data_dir() / "tui_trader.log"


def demo_notice(path: Path, explicit: str | None) -> str:
    """What to tell the operator when no settings of theirs were found and the project's demo
    settings are in use ("" otherwise)."""
    if explicit or os.environ.get("TUI_TRADER_CONFIG") or path.resolve() != PROJECT_SETTINGS:
        return ""
    if (Path.cwd() / "settings.toml").is_file():
        return ""
    return (f"no settings.toml in {Path.cwd()}: running the paper demo's settings ({path}); "
            "pass --config PATH (or set TUI_TRADER_CONFIG) to use your own")


def find_settings(explicit: str | None) -> Path | None:
    """--config, else TUI_TRADER_CONFIG, else ./settings.toml, else the project's settings.toml."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("TUI_TRADER_CONFIG")
    if env:
        return Path(env).expanduser()
    for candidate in (Path.cwd() / "settings.toml", PROJECT_SETTINGS):
        if candidate.is_file():
            return candidate
    return None
