"""how a case ends when Amazon confirms an action; a closed case's run still to finish

Revision ID: 0009_closes_case
Revises: 0008_attention
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_closes_case"
down_revision = "0008_attention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("actions") as batch_op:
        batch_op.add_column(sa.Column("closes_case", sa.JSON(), nullable=True))
    with op.batch_alter_table("cases") as batch_op:
        batch_op.add_column(
            sa.Column("run_to_finish", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_column("run_to_finish")
    with op.batch_alter_table("actions") as batch_op:
        batch_op.drop_column("closes_case")
