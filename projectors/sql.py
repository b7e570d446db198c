"""The small SQL contract the read-model domains are written against once, for SQLite and Postgres.

A domain module (appliers and queries) speaks portable SQL: named parameters (``:name``), ``ON CONFLICT``
upserts, ``CAST``. What truly differs between the backends is asked of the :class:`Dialect` (JSON access,
full-text search, ...); connections, migrations and error mapping stay in ``projectors/sqlite`` and
``projectors/postgres``, each with one :class:`Sql` adapter over its driver.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

__all__ = ["POSTGRES", "SQLITE", "Dialect", "Sql", "chunks", "first", "in_list"]

#: Values per ``IN (…)`` list: below SQLite's default 999 bound variables, with room for other parameters.
CHUNK = 500


@dataclass(frozen=True)
class Dialect:
    """What a shared statement must ask of its backend. Add a method here, not an ``if`` in a domain."""

    name: Literal["sqlite", "postgres"]

    def json_text(self, column: str, key: str) -> str:
        """The text value at ``key`` of the JSON object in ``column`` (NULL where absent)."""
        if self.name == "sqlite":
            return f"json_extract({column}, '$.{key}')"
        return f"({column} ->> '{key}')"

    def json_param(self, name: str) -> str:
        """A JSON column's value from the parameter ``name`` (JSON text): TEXT on SQLite, jsonb on Postgres."""
        return f":{name}" if self.name == "sqlite" else f"CAST(:{name} AS jsonb)"

    def json_value(self, value: Any) -> Any:
        """A JSON column as read: SQLite returns its text, Postgres (jsonb) the decoded value."""
        return json.loads(value) if self.name == "sqlite" and isinstance(value, str) else value

    def vector_column(self, column: str) -> str:
        """A vector column selected so :meth:`vector_bytes` can read it (pgvector's text form on Postgres)."""
        return column if self.name == "sqlite" else f"CAST({column} AS text)"

    def vector_bytes(self, value: Any) -> bytes:
        """Little-endian float32 bytes of a vector selected through :meth:`vector_column`."""
        if self.name == "sqlite":
            return bytes(value)
        return np.array(str(value)[1:-1].split(","), dtype="<f4").tobytes()

    def greatest(self, a: str, b: str) -> str:
        """The larger of two values (SQLite's two-argument ``max`` is scalar, Postgres names it ``greatest``)."""
        return f"max({a}, {b})" if self.name == "sqlite" else f"greatest({a}, {b})"

    def least(self, a: str, b: str) -> str:
        """The smaller of two values."""
        return f"min({a}, {b})" if self.name == "sqlite" else f"least({a}, {b})"

    def vector_param(self, name: str) -> str:
        """A vector column's value from the parameter ``name``: float32 bytes on SQLite, pgvector's text form."""
        return f":{name}" if self.name == "sqlite" else f"CAST(:{name} AS vector)"

    def in_list(self, column: str, key: str, values: Sequence[Any], params: dict[str, Any]) -> str:
        """``column`` is one of ``values`` (bound into ``params`` under ``key``): one parameter per value on
        SQLite, which binds no arrays; one array parameter on Postgres, whatever the number of values."""
        if self.name == "sqlite":
            params.update({f"{key}{i}": v for i, v in enumerate(values)})
            return f"{column} IN ({', '.join(f':{key}{i}' for i in range(len(values)))})"
        params[key] = list(values)
        return f"{column} = ANY(:{key})"

    def list_batch(self) -> int:
        """The most values one :meth:`in_list` should carry: :data:`CHUNK` on SQLite; Postgres binds one array."""
        return CHUNK if self.name == "sqlite" else 1_000_000

    def in_subtree(self, column: str, key: str, prefix: str, params: dict[str, Any]) -> str:
        """``column`` (a ``/``-separated path) is ``prefix`` or below it. SQLite compares bytes, and the names
        below ``p`` are exactly those in [``p/``, ``p0``) (``0`` follows ``/``): two comparisons, cheaper per row
        than a substring. Postgres orders text by its collation, so it asks starts_with instead."""
        params[key] = prefix
        if self.name == "sqlite":
            params[key + "_lo"], params[key + "_hi"] = prefix + "/", prefix + "0"
            return f"({column} = :{key} OR ({column} >= :{key}_lo AND {column} < :{key}_hi))"
        return f"({column} = :{key} OR starts_with({column}, :{key} || '/'))"

    def like_nocase(self) -> str:
        """The LIKE that ignores ASCII case (SQLite's LIKE does; Postgres's does not)."""
        return "LIKE" if self.name == "sqlite" else "ILIKE"


SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgres")


class Sql(Protocol):
    """One backend's way to run a statement in the current transaction."""

    @property
    def dialect(self) -> Dialect: ...

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]: ...

    def run(self, sql: str, params: Mapping[str, Any]) -> int:
        """Run ``sql``; the number of rows it changed."""
        ...


def chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    """``values`` in slices short enough for one :func:`in_list`."""
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def in_list(values: Collection[str], prefix: str = "v") -> tuple[str, dict[str, str]]:
    """An ``IN (…)`` list of named parameters for ``values`` and those parameters (``:v0, :v1, …``)."""
    params = {f"{prefix}{i}": v for i, v in enumerate(values)}
    return ", ".join(f":{name}" for name in params), params


def first(sql: Sql, statement: str, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first row ``statement`` returns, or None."""
    found = sql.rows(statement, params)
    return found[0] if found else None
