"""Schema migrations (Alembic): every database is brought to the newest revision when opened.
One without alembic_version (empty, or made before migrations) is stamped first: see _adopt.

Changing the schema: edit services/store/tables.py, then `make migration m="what changed"`.
It replays every revision on an empty database and writes what tables.py adds as the next
one, services/store/migrations/versions/NNNN_what_changed.py. Read it before keeping it: a
NOT NULL column added to a table takes the model's default as its server_default (the value
of the rows already there; one without a default needs it written in), and a rename shows
up as a drop plus an add. tests/test_migrations.py fails while tables.py and the revisions
disagree. A revision that has been released is never edited: add another."""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from . import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"
"""The schema of databases created before migrations existed: they have our tables but no
alembic_version table."""


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer tui-trader: its revision is unknown here."""


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.attributes["connection"] = connection
    return cfg


@cache
def _scripts() -> ScriptDirectory:
    """Read once: the test suite opens many stores."""
    return ScriptDirectory.from_config(alembic_config())


@cache
def head() -> str:
    return _scripts().get_current_head()


@cache
def _known() -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().walk_revisions())


def upgrade(engine: Engine) -> None:
    """Bring this database to the newest revision, creating the tables of an empty one.
    Raises SchemaTooNewError for a revision this code does not know."""
    with engine.begin() as conn:
        context = MigrationContext.configure(conn)
        current = context.get_current_revision()
        if current is None:
            current = _adopt(conn, context)
        elif current not in _known():
            raise SchemaTooNewError(
                f"the database {engine.url} is at schema revision {current}, written by a newer tui-trader: "
                "upgrade tui-trader, or point store.url at another database")
        if current != head():
            steps = reversed(list(_scripts().iterate_revisions(head(), current)))
            log.info("migrating database %s from revision %s: %s", engine.url, current,
                     "; ".join(f"{step.revision} {step.doc}" for step in steps))
            command.upgrade(alembic_config(conn), "head")


def _adopt(conn: Connection, context: MigrationContext) -> str:
    """Stamp a database that has no alembic_version with the revision its tables are at.
    An empty one gets the tables as tables.py has them now rather than every revision
    replayed (Alembic's recipe: fast however many revisions pile up; tests/test_migrations.py
    checks that both agree). One made before migrations is at BASELINE, unless create_all
    made it from tables.py as it is now (bench/recovery.py does)."""
    if not inspect(conn).has_table("legs"):
        SQLModel.metadata.create_all(conn)
        revision = head()
        log.info("database %s created at revision %s", conn.engine.url, revision)
    else:
        revision = BASELINE if differences(conn) else head()
        log.info("database %s predates migrations: taken as revision %s", conn.engine.url, revision)
    context.stamp(_scripts(), revision)
    return revision


def differences(conn: Connection) -> list:
    """What tables.py has that this database lacks (or the reverse), as Alembic sees it."""
    return compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)


def new_revision(message: str) -> str | None:
    """Write the next revision (see the module docstring); returns its path, None when
    tables.py matches the newest revision already."""
    with create_engine("sqlite://").begin() as conn:
        command.upgrade(alembic_config(conn), "head")
        if not differences(conn):
            return None
        script = command.revision(alembic_config(conn), message, autogenerate=True, rev_id=f"{int(head()) + 1:04d}")
    return script.path
