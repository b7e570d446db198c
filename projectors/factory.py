"""Choosing the memory read model from configuration: the only place that picks a backend.

``""`` or a path: the SQLite file (default ``<data-dir>/readmodel.db``); ``sqlite:///path``: that file, which
the nodes of one host may share; ``postgresql+psycopg://…`` (or ``postgresql://…``): a Postgres read model,
which several nodes may share.
"""

from __future__ import annotations

from pathlib import Path

from projectors.errors import ReadModelError
from projectors.memory_model import MemoryReadModel
from projectors.sqlite import SQLiteReadModel

__all__ = ["is_postgres_url", "open_read_model", "sqlite_path"]

_POSTGRES_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgres://")


def is_postgres_url(url: str) -> bool:
    return url.startswith(_POSTGRES_SCHEMES)


def sqlite_path(url: str, default: Path) -> Path:
    if not url:
        return default
    return Path(url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url).expanduser()


def open_read_model(url: str, *, default_path: Path) -> MemoryReadModel:
    """Open the read model ``url`` names (see the module docstring).

    Raises:
        ReadModelError: the database cannot be reached or migrated, or the ``postgres`` extra is missing.
    """
    if not is_postgres_url(url):
        path = sqlite_path(url, default_path)
        model = SQLiteReadModel(path)
        # A file named outside the node's data directory may be shared by the nodes of one host.
        model.shared = path != default_path
        return model
    try:
        from projectors.postgres import PostgresReadModel
    except ImportError as exc:
        msg = f"a Postgres read model needs the postgres extra (pip install 'ai-memory-es[postgres]'): {exc}"
        raise ReadModelError(msg) from None
    return PostgresReadModel(url)
