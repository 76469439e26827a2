"""Media pins: a stored object held by a request taking it in, until its media row commits

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from soku.db import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media_pins",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_pins")),
    )
    op.create_index("ix_media_pins_storage_key", "media_pins", ["storage_key"])
    # the delete and the release count a key's rows: without it, a scan of every media row
    op.create_index("ix_media_storage_key", "media", ["storage_key"])


def downgrade() -> None:
    op.drop_index("ix_media_storage_key", table_name="media")
    op.drop_table("media_pins")
