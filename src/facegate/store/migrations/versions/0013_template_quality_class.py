"""Each template records the quality class of the face it was made from (ok, small, greyscale, compressed, blurry).

Two faces with the same flaw look alike more easily; the open-set decision reads a
similarity against the pair of classes (facegate.gallery.openset). Templates stored before
this revision count as ``ok``.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("templates") as batch:
        batch.add_column(sa.Column("quality_class", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("templates") as batch:
        batch.drop_column("quality_class")
