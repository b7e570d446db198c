"""Alembic's entry point for the Postgres read model. Run through :func:`projectors.postgres.schema.migrate`
(``ai-memory migrate --read-model URL``), which hands over an open connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    msg = "the read model's migrations run online only (they need the server's extensions)"
    raise SystemExit(msg)
run()
