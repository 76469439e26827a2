"""Publishing caps: the index of published deliveries by account holds only published rows

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 09:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_deliveries_account_published"
COLUMNS = ["account_ref", "published_at"]
PUBLISHED = sa.text("published_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(NAME)
        batch_op.create_index(
            NAME, COLUMNS, unique=False, postgresql_where=PUBLISHED, sqlite_where=PUBLISHED
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(NAME, postgresql_where=PUBLISHED, sqlite_where=PUBLISHED)
        batch_op.create_index(NAME, COLUMNS, unique=False)
