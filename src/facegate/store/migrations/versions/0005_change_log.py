"""A log of which people each collection version changed, so indexes reload only those.

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
        "collection_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("person_id", sa.String(40), nullable=True),
    )
    op.create_index("ix_collection_changes_version", "collection_changes", ["collection_id", "version"])


def downgrade() -> None:
    op.drop_index("ix_collection_changes_version", "collection_changes")
    op.drop_table("collection_changes")
