"""Alembic environment, run by services/store/schema.py on a connection it passes in
config.attributes["connection"] (no alembic.ini, no URL of its own)."""

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.rewriter import Rewriter
from alembic.operations import ops
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from services.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

rewriter = Rewriter()


@rewriter.rewrites(ops.AddColumnOp)
def default_for_existing_rows(_context, _revision, op: ops.AddColumnOp) -> ops.AddColumnOp:
    """A NOT NULL column added to a table takes the model's default as its server default:
    the value of the rows already there (SQLite refuses the column without one)."""
    column, default = op.column, op.column.default
    if column.nullable or column.server_default is not None or default is None or not default.is_scalar:
        return op
    value = default.arg
    # A string, even for a number: an expression would make SQLite copy the whole table.
    literal = str(int(value)) if isinstance(value, bool) else str(value)
    return ops.AddColumnOp(op.table_name, sa.Column(column.name, column.type, nullable=False, server_default=literal))


def render_item(type_, obj, _autogen_context):
    """Write SQLModel's str columns as plain sa.String(), so a revision needs no sqlmodel import."""
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String({obj.length or ''})"
    return False


context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=SQLModel.metadata,
    render_as_batch=True,  # SQLite alters most columns only by copying the table
    render_item=render_item,
    process_revision_directives=rewriter,
)
with context.begin_transaction():
    context.run_migrations()
