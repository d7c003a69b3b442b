"""The event log: recognitions, unknowns, departures and camera state changes, with face snapshots.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", sa.Integer(), primary_key=True),  # order of writing: what a live feed follows
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("collection", sa.String(200), nullable=True),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("person_id", sa.String(40), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("decision", sa.String(10), nullable=True),
        sa.Column("box", sa.JSON(), nullable=True),
        sa.Column("detail", sa.String(500), nullable=True),
        sa.Column("has_snapshot", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "event_snapshots",
        sa.Column("event_id", sa.String(40), sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("jpeg", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_events_ts", "events", ["ts"])
    op.create_index("ix_events_person", "events", ["person_id", "ts"])
    op.create_index("ix_events_source", "events", ["source", "ts"])


def downgrade() -> None:
    op.drop_table("event_snapshots")
    op.drop_table("events")
