"""Signal inbox rows say what they are (entry or exit), their timeframe and an optional size."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signal_inbox") as batch_op:
        batch_op.add_column(sa.Column("intent", sa.String(), nullable=False, server_default="entry"))
        batch_op.add_column(sa.Column("timeframe", sa.String(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("size", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signal_inbox") as batch_op:
        batch_op.drop_column("size")
        batch_op.drop_column("timeframe")
        batch_op.drop_column("intent")
