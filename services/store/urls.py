"""Database URLs as the shell meets them: whether one can be a database at all, whether
another process can reach it, and how to name it to the user. Nothing here connects."""

from __future__ import annotations

import os
import stat

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

SQLITE_HEADER = b"SQLite format 3\x00"
"""The first bytes of every SQLite database file."""


def is_shared_url(url: str) -> bool:
    """Whether another process can reach this database (an in-memory SQLite cannot)."""
    return bool(url) and url not in ("sqlite://", "sqlite:///") and ":memory:" not in url


def url_problem(url: str) -> str:
    """Why url cannot be a database ("" when it may be one), found before any command runs: a
    mistyped --db or store.url is bad input, not an internal error."""
    expected = "expected a SQLite file path or a SQLAlchemy URL (sqlite:///PATH, postgresql+psycopg://USER@HOST/DB)"
    try:
        parsed = make_url(url)
        create_engine(parsed).dispose()  # loads the dialect and its driver; connects to nothing
    except NoSuchModuleError:
        return f"unknown kind of database {parsed.drivername!r}; {expected}"
    except ArgumentError:
        return f"not a database URL; {expected}"
    except ImportError as exc:
        return f"the driver for {parsed.drivername} is not installed ({exc})"
    path = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if not path or path == ":memory:":
        return ""
    try:
        is_dir = stat.S_ISDIR(os.stat(path).st_mode)
    except FileNotFoundError:  # an engine creates it; a read says there is none yet
        return ""
    except OSError as exc:  # a file on the way, a name too long
        return f"cannot be used ({exc.strerror})"
    if is_dir:
        return "a directory, not a database file"
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return "" if head in (b"", SQLITE_HEADER) else "not a SQLite database"


def dialect_problem(url: str) -> str:
    """Why url is not a URL of a dialect and driver SQLAlchemy knows ("" when it is): the
    settings refuse a bad one at start, not at the first connection. The URL itself is not in
    the reason: it may hold a password."""
    try:
        make_url(url).get_dialect()
    except NoSuchModuleError:
        return f"unknown database dialect or driver {make_url(url).drivername!r}"
    except (ArgumentError, ValueError):
        return "not a database URL like sqlite:///path/to/file.db or postgresql+psycopg://user@host/name"
    return ""


def safe_url(url: str) -> str:
    """A database URL as it may be logged or shown: its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an invalid database URL)"


def shown_url(url: str) -> str:
    """The database as the user knows it: a SQLite file's path, else the URL without its password."""
    parsed = make_url(url)
    return parsed.database if parsed.get_backend_name() == "sqlite" else parsed.render_as_string(hide_password=True)
