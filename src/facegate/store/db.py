"""Database connection: SQLite (WAL) in the data directory by default, PostgreSQL by URL.

``FACEGATE_DATABASE_URL`` selects the database, e.g.
``postgresql+psycopg://user@host/facegate``; without it facegate uses
``sqlite:///$FACEGATE_DATA_DIR/facegate.db``. ``upgrade`` applies the Alembic migrations
shipped in this package (the service applies them at start).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event

MIGRATIONS = Path(__file__).parent / "migrations"


def default_database_url() -> str:
    """``$FACEGATE_DATABASE_URL``, else an SQLite file in the data directory."""
    url = os.environ.get("FACEGATE_DATABASE_URL", "").strip()
    if url:
        return url
    from facegate.paths import default_data_dir

    data_dir = default_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'facegate.db'}"


def make_engine(url: str | None = None) -> Engine:
    """An SQLAlchemy engine; SQLite gets WAL, foreign keys and a busy timeout."""
    url = url or default_database_url()
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the schema migrations up to ``revision`` (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None before the first upgrade)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
