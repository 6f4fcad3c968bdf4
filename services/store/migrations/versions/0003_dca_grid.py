"""DCA grids: a group's take-profit mode, capital, pyramids and risk timers; a leg's layer;
a queued signal's size."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("legs") as batch_op:
        batch_op.add_column(sa.Column("layer", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("pyramid", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("weight", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("tp_pct", sa.Float(), nullable=True))

    with op.batch_alter_table("position_groups") as batch_op:
        batch_op.add_column(sa.Column("tp_mode", sa.String(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("agg_tp", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("capital", sa.Float(), nullable=False, server_default="0.0"))
        batch_op.add_column(sa.Column("pyramids", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("dca_submitted_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("dca_filled_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("fifth_pyramid_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("risk_hold", sa.String(), nullable=False, server_default=""))

    with op.batch_alter_table("signal_queue") as batch_op:
        batch_op.add_column(sa.Column("size", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signal_queue") as batch_op:
        batch_op.drop_column("size")

    with op.batch_alter_table("position_groups") as batch_op:
        for name in ("risk_hold", "fifth_pyramid_at", "dca_filled_at", "dca_submitted_at", "pyramids", "capital",
                     "agg_tp", "tp_mode"):
            batch_op.drop_column(name)

    with op.batch_alter_table("legs") as batch_op:
        for name in ("tp_pct", "weight", "pyramid", "layer"):
            batch_op.drop_column(name)
