"""Settings: settings.toml (or --config PATH), overridden by TUI_TRADER_* environment
variables (nested with __, e.g. TUI_TRADER_ENGINE__MAX_OPEN_POSITIONS=3), validated by
pydantic. Every problem is reported as one line: field path and reason."""

from __future__ import annotations

import reprlib
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from services.config import StoreConfig, Text, TradingConfig

from .locations import default_db_url


class SettingsError(Exception):
    """The settings cannot be used; `problems` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.source, self.problems = source, problems


def _database_url(url: str) -> str:
    """Empty (the default database), or a URL of a dialect and driver SQLAlchemy knows."""
    if url:
        from services.store.urls import dialect_problem  # the store only when a URL is given

        if problem := dialect_problem(url):
            raise ValueError(problem)
    return url


class StoreSettings(StoreConfig):
    # Checked by the shell: the screens read services.config and never touch the database.
    url: Annotated[Text, AfterValidator(_database_url)] = ""
    """SQLAlchemy URL; empty means SQLite in the user's data directory."""


class Settings(BaseSettings, TradingConfig):
    """The whole configuration: the engine's (TradingConfig) plus the shell's own."""

    model_config = SettingsConfigDict(env_prefix="TUI_TRADER_", env_nested_delimiter="__", extra="forbid",
                                      frozen=True, nested_model_default_partial_update=True)

    store: StoreSettings = StoreSettings()
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Level of the log file (and of the headless engine's output)."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings, file_secret_settings):
        # The file's values arrive as init arguments; the environment overrides them.
        return (env_settings, init_settings)


def load_settings(path: Path | None, overrides: dict[str, Any] | None = None) -> Settings:
    """Read and validate. Raises SettingsError naming each bad field."""
    source = str(path) if path else "the built-in defaults"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SettingsError(source, [f"{path}: no such file; pass an existing file with --config"]) from None
        except OSError as exc:
            raise SettingsError(source, [f"{path}: cannot be read ({exc.strerror})"]) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(source, [f"{path}: not valid TOML: {exc}"]) from None
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        data.setdefault(section, {})[name] = value
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise SettingsError(source, [_describe(err) for err in exc.errors()]) from None
    if not settings.store.url:
        settings = settings.model_copy(update={"store": settings.store.model_copy(update={"url": default_db_url()})})
    return settings


def _describe(err: dict) -> str:
    path = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind, msg = err["type"], err["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        msg = "unknown setting (check its spelling and section)"
    elif kind == "missing":
        msg = "required setting is missing"
    elif "input" in err and kind not in ("value_error",) and not isinstance(err["input"], dict):
        msg = f"{msg} (got {reprlib.repr(err['input'])})"  # shortened: a value may be a huge string
    return f"{path}: {msg}"
