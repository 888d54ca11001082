"""photos attached to cases as evidence (files under the data folder, rows here)

Revision ID: 0007_evidence
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_evidence"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_photos",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("step", sa.String(40), nullable=True),
        sa.Column("file", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(40), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("added_by", sa.String(80), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_case_photos_case_id", "case_photos", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_photos_case_id", table_name="case_photos")
    op.drop_table("case_photos")
