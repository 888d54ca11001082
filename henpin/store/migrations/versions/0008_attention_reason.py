"""a case's needs-attention reason as a code and values, beside its English words

Revision ID: 0008_attention
Revises: 0007_evidence
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_attention"
down_revision = "0007_evidence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.add_column(sa.Column("needs_attention_reason", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_column("needs_attention_reason")
