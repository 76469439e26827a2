"""Publishing caps: an index of the deliveries being published, by account

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 10:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLISHING = sa.text("status = 'publishing'")


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_account_publishing",
            ["account_ref", "id"],
            unique=False,
            postgresql_where=PUBLISHING,
            sqlite_where=PUBLISHING,
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_deliveries_account_publishing",
            postgresql_where=PUBLISHING,
            sqlite_where=PUBLISHING,
        )
