"""Alembic environment: run with the connection handed over by ``facegate.store.db.upgrade``."""

from __future__ import annotations

from alembic import context

from facegate.store.schema import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs table copies to ALTER
)
with context.begin_transaction():
    context.run_migrations()
