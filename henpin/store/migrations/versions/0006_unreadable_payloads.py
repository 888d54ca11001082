"""raw payloads of unreadable orders move out of the audit log into a purgeable table

Revision ID: 0006
Revises: 0005

The audit log is append-only and never purged, but an order Amazon sent in a shape Henpin
cannot read (and without an order id, so no case to keep it on) was audited with its raw
payload: a buyer's name and address kept forever. Such payloads now live in
`unreadable_payloads`, purged after the policy's retention; the audit entry names the row.
Existing entries are moved the same way.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    payloads = op.create_table(
        "unreadable_payloads",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(60), nullable=False, server_default=""),
        sa.Column("problem", sa.Text(), nullable=False, server_default=""),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_unreadable_payloads_at", "unreadable_payloads", ["at"])
    assert payloads is not None
    audit = sa.table(
        "audit_log",
        sa.column("id", sa.Integer()),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("action", sa.String()),
        sa.column("source", sa.String()),
        sa.column("detail", sa.JSON()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(audit.c.id, audit.c.at, audit.c.source, audit.c.detail).where(
            audit.c.action == "unreadable-order"
        )
    ).all()
    for audit_id, at, source, detail in rows:
        detail = dict(detail or {})
        if "payload" not in detail:
            continue
        payload_id = bind.execute(
            payloads.insert()
            .values(
                at=at,
                source=source or "",
                problem=str(detail.get("problem", "")),
                payload=detail.pop("payload", None),
            )
            .returning(payloads.c.id)
        ).scalar_one()
        bind.execute(
            audit.update()
            .where(audit.c.id == audit_id)
            .values(detail={**detail, "payload_id": payload_id})
        )


def downgrade() -> None:
    op.drop_index("ix_unreadable_payloads_at", table_name="unreadable_payloads")
    op.drop_table("unreadable_payloads")
