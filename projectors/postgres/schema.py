"""Connecting to the Postgres read model and bringing its schema up to date with Alembic.

The schema lives in ``migrations/versions`` (one file per revision); :func:`migrate` applies what a database
lacks. Every model opens with :func:`migrate` to head, so a node never runs against an old schema; the
``ai-memory migrate`` verb does the same on its own (and can stop at a given revision).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, make_url, text

from projectors.postgres.errors import mapped_errors

__all__ = ["HEAD", "connect", "current_revision", "head_revision", "migrate", "reset"]

HEAD = "head"
_MIGRATIONS = Path(__file__).with_name("migrations")
RANDOM_PAGE_COST = 1.1
# A lock key of our own: two nodes starting together must not both run the same migration.
_MIGRATION_LOCK = 0x61692D6D656D


def connect(url: str, *, pool_size: int = 4) -> Engine:
    """An engine for ``postgresql+psycopg://…`` (a ``postgresql://`` URL is given the psycopg 3 driver)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    # The planner's default random_page_cost (4) assumes spinning disks and prices the GIN index so high that a
    # keyword query over a few percent of the rows became a sequential scan (18 ms instead of 3 at 20k rows). A
    # read model is meant to be served from memory, where random reads cost about as much as sequential ones.
    return create_engine(parsed, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=False,
                         connect_args={"options": f"-c random_page_cost={RANDOM_PAGE_COST}"})


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str | None:
    """The newest revision in ``migrations/versions`` (what :func:`migrate` brings a database to)."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def migrate(engine: Engine, revision: str = HEAD) -> str | None:
    """Upgrade the database to ``revision`` (default the newest); return the revision it is at afterwards."""
    config = _config()
    with mapped_errors(), engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    with mapped_errors(), engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def reset(engine: Engine) -> None:
    """Drop everything the migrations created (for a rebuild from the log), then migrate to head again."""
    config = _config()
    with mapped_errors(), engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    migrate(engine)
