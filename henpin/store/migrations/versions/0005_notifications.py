"""notifications: what Henpin told people, so each is told once

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("subject", sa.String(120), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("feed_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("kind", "subject", name="uq_notification_kind_subject"),
    )
    op.create_index("ix_notifications_kind_status", "notifications", ["kind", "status"])
    op.create_index("ix_notifications_case_id", "notifications", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_notifications_case_id", table_name="notifications")
    op.drop_index("ix_notifications_kind_status", table_name="notifications")
    op.drop_table("notifications")
