"""Templates recomputed by ``facegate reembed`` point at the template they came from.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("templates") as batch:
        batch.add_column(sa.Column("origin_id", sa.String(40), nullable=True))
        batch.create_index("ix_templates_origin", ["origin_id"])


def downgrade() -> None:
    with op.batch_alter_table("templates") as batch:
        batch.drop_index("ix_templates_origin")
        batch.drop_column("origin_id")
