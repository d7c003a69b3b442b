"""A change counter per collection, bumped by every write, so other processes see changes;
the ``default`` collection exists from the start (concurrent first writes never race to make it).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="0"))
    collections = sa.table("collections", sa.column("name", sa.String), sa.column("created_at", sa.Float))
    bind = op.get_bind()
    if (
        bind.execute(
            sa.select(sa.func.count()).select_from(collections).where(collections.c.name == "default")
        ).scalar()
        == 0
    ):
        op.execute(collections.insert().values(name="default", created_at=0.0))


def downgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("version")
