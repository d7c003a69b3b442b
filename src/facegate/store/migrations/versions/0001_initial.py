"""Collections, people and face templates.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "people",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("public_id", sa.String(40), nullable=False, unique=True),
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("external_ref_hash", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("collection_id", "name", name="uq_people_collection_name"),
    )
    op.create_index("ix_people_external_ref", "people", ["collection_id", "external_ref_hash"])
    op.create_table(
        "templates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("public_id", sa.String(40), nullable=False, unique=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("model_id", sa.String(100), nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.Column("quality", sa.Float, nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("chip_jpeg", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_templates_person", "templates", ["person_id"])
    op.create_index("ix_templates_model", "templates", ["model_id"])


def downgrade() -> None:
    op.drop_table("templates")
    op.drop_table("people")
    op.drop_table("collections")
