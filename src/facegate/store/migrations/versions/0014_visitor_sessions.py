"""Visitor sessions: a collection of a visitor's own, searched together with a base collection, until it expires.

The people of a session live in a collection of its own (``session-<random hex>``); the sweeper of
``facegate.service.sessions`` erases the collection with the session when ``expires_at`` passes.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "visitor_sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("public_id", sa.String(40), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "collection_id",
            sa.Integer,
            sa.ForeignKey("collections.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("base_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_visitor_sessions_expires_at", "visitor_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_visitor_sessions_expires_at", "visitor_sessions")
    op.drop_table("visitor_sessions")
