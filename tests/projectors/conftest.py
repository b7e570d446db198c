"""Fixtures of the projector tests: fresh read models of each backend for the convergence tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from projectors import MemoryReadModel
from projectors.postgres import PostgresReadModel
from projectors.sqlite import SQLiteReadModel

#: Read models one interleaving test uses (Postgres keeps that many databases and empties one for each use).
_PER_EXAMPLE = 5


def _emptied(model: PostgresReadModel) -> PostgresReadModel:
    """The model with every table emptied (faster than a new database with its migrations, per example)."""
    with model.engine.begin() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename != 'alembic_version'"))]
        conn.execute(text(f"TRUNCATE {', '.join(tables)}"))
    return model


@pytest.fixture(params=["sqlite", "postgres"])
def models(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], MemoryReadModel]]:
    """Fresh, empty read models of one backend (Postgres: a few databases on the session's embedded server,
    emptied for each use)."""
    opened: list[MemoryReadModel] = []
    uses = 0

    def fresh() -> MemoryReadModel:
        nonlocal uses
        uses += 1
        if request.param == "sqlite":
            opened.append(SQLiteReadModel(tmp_path / f"m{uses}.db"))
            return opened[-1]
        if len(opened) < _PER_EXAMPLE:
            server = request.getfixturevalue("postgres_server")
            opened.append(PostgresReadModel(server.create_database(f"conv_{uuid.uuid4().hex[:10]}")))
        model = opened[(uses - 1) % _PER_EXAMPLE]
        assert isinstance(model, PostgresReadModel)
        return _emptied(model)

    yield fresh
    for model in opened:
        model.close()


