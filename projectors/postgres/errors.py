"""The one boundary where database driver errors become :class:`ReadModelError`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy.exc import SQLAlchemyError

from projectors.errors import ReadModelError

__all__ = ["mapped_errors"]


@contextlib.contextmanager
def mapped_errors() -> Iterator[None]:
    """Every SQLAlchemy / psycopg error raised inside becomes a :class:`ReadModelError` (cause kept)."""
    try:
        yield
    except SQLAlchemyError as exc:
        # The first line is the driver's message; the rest is SQLAlchemy's statement dump (noise in logs).
        msg = f"postgres read model: {str(exc).splitlines()[0]}"
        raise ReadModelError(msg) from exc
