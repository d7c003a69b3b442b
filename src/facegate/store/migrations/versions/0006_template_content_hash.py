"""Each template records the SHA-256 of the image it came from; a person holds an image once per model.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("templates") as batch:
        batch.add_column(sa.Column("content_hash", sa.String(64), nullable=True))
        batch.create_index("ux_templates_person_image", ["person_id", "content_hash", "model_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("templates") as batch:
        batch.drop_index("ux_templates_person_image")
        batch.drop_column("content_hash")
