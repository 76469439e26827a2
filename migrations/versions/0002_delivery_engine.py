"""Delivery engine: per-platform claim index, lease index, cap index, attempt details

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 21:52:34.455913
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from soku.db import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Superseded by ix_deliveries_due_platform: PostgreSQL chose it for per-platform claims
    # and then read past other platforms' due rows.
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_deliveries_due",
            postgresql_where=sa.text("status IN ('scheduled', 'queued')"),
            sqlite_where=sa.text("status IN ('scheduled', 'queued')"),
        )

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_account_published", ["account_ref", "published_at"], unique=False
        )
        batch_op.create_index(
            "ix_deliveries_due_platform",
            ["platform", "run_at"],
            unique=False,
            postgresql_where=sa.text("status IN ('scheduled', 'queued')"),
            sqlite_where=sa.text("status IN ('scheduled', 'queued')"),
        )
        batch_op.create_index(
            "ix_deliveries_lease",
            ["lease_expires_at"],
            unique=False,
            postgresql_where=sa.text("status IN ('processing', 'publishing')"),
            sqlite_where=sa.text("status IN ('processing', 'publishing')"),
        )

    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=40), nullable=True))

    # Room for the endpoint prefix in front of a caller's key of 255 characters.
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.alter_column(
            "key", existing_type=sa.String(length=255), type_=sa.String(length=300)
        )

    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scheduled_for", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("worker", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "response", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.alter_column(
            "key", existing_type=sa.String(length=300), type_=sa.String(length=255)
        )
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_column("request_id")

    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_column("response")
        batch_op.drop_column("worker")
        batch_op.drop_column("scheduled_for")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_deliveries_lease",
            postgresql_where=sa.text("status IN ('processing', 'publishing')"),
            sqlite_where=sa.text("status IN ('processing', 'publishing')"),
        )
        batch_op.drop_index(
            "ix_deliveries_due_platform",
            postgresql_where=sa.text("status IN ('scheduled', 'queued')"),
            sqlite_where=sa.text("status IN ('scheduled', 'queued')"),
        )
        batch_op.drop_index("ix_deliveries_account_published")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_due",
            ["run_at"],
            unique=False,
            postgresql_where=sa.text("status IN ('scheduled', 'queued')"),
            sqlite_where=sa.text("status IN ('scheduled', 'queued')"),
        )
