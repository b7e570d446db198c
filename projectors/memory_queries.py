"""The memory read side written once over :class:`~projectors.sql.Sql`, for SQLite and Postgres.

Everything but keyword ranking (FTS5 vs tsvector), the stored vectors' form and the database's size is the same
SQL on both backends: filters, lookups, listings, counts. A backend subclasses :class:`SqlMemoryQueries` and
supplies those few parts; what only differs in spelling (a list of ids, a namespace subtree, a case-blind LIKE)
is asked of the :class:`~projectors.sql.Dialect`.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from projectors.queries import AmbiguousIdError, MemoryFilter, MemoryQueries, NamespaceCount, Stats, inbox_of
from projectors.sql import Dialect, Sql, first
from schemas import Memory

__all__ = ["COLUMNS", "M_COLUMNS", "SqlMemoryQueries", "memory_where", "row_to_memory"]

COLUMNS = ("id, tier, namespace, title, content, tags, priority, confidence, source, access_count, created_at, "
           "updated_at, last_accessed_at, expires_at, metadata")
M_COLUMNS = ", ".join(f"m.{c.strip()}" for c in COLUMNS.split(","))

_T = TypeVar("_T")


class Row(Protocol):
    """A row read by name: a mapping, or a driver's row (sqlite3.Row)."""

    def __getitem__(self, key: str, /) -> Any: ...


def _json(value: Any) -> Any:
    """A JSON column's value: SQLite stores the text, Postgres's jsonb arrives decoded; None if unreadable."""
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def row_to_memory(row: Row) -> Memory:
    tags, metadata = _json(row["tags"]), _json(row["metadata"])
    return Memory(
        id=row["id"], tier=row["tier"], namespace=row["namespace"], title=row["title"], content=row["content"],
        tags=list(tags or []), priority=row["priority"], confidence=row["confidence"], source=row["source"],
        access_count=row["access_count"], created_at=row["created_at"], updated_at=row["updated_at"],
        last_accessed_at=row["last_accessed_at"], expires_at=row["expires_at"],
        metadata=metadata if isinstance(metadata, dict) else {})


def memory_where(flt: MemoryFilter, params: dict[str, Any], dialect: Dialect, *, tag: str, alias: str = "m",
                 unexpired: bool = True) -> str:
    """SQL conditions for ``flt`` over ``alias`` (``memories``, or a narrower table with the same filter
    columns); parameters are added to ``params``. ``tag`` is the backend's test that the row's tags hold
    ``:tag`` (JSON containment differs, and a narrow table reaches the tags through its row id)."""
    a = alias
    conds: list[str] = []
    if unexpired:
        params["now"] = flt.now
        conds.append(f"({a}.expires_at IS NULL OR {a}.expires_at > :now)")
    if flt.namespaces:
        conds.append(dialect.in_list(f"{a}.namespace", "ns", flt.namespaces, params))
    elif flt.namespace is not None:
        params["namespace"] = flt.namespace
        conds.append(f"{a}.namespace = :namespace")
    simple = (("tier", f"{a}.tier = :tier"), ("min_priority", f"{a}.priority >= :min_priority"),
              ("since", f"{a}.created_at >= :since"), ("until", f"{a}.created_at <= :until"),
              ("agent_id", f"{a}.agent_id = :agent_id"), ("tag", tag))
    for name, cond in simple:
        value = getattr(flt, name)
        if value is not None:
            params[name] = value
            conds.append(cond)
    if flt.as_agent is not None:
        conds.append(_visibility(flt.as_agent, params, dialect, a))
    for i, prefix in enumerate(flt.hidden_prefixes):
        conds.append(f"NOT {dialect.in_subtree(f'{a}.namespace', f'hide{i}', prefix, params)}")
    if flt.caller is not None:
        # projectors.owner_sees: another agent's private memory is left out (its inbox's recipient sees it).
        params["caller"], params["caller_inbox"] = flt.caller, inbox_of(flt.caller)
        conds.append(f"({a}.scope <> 'private' OR {a}.agent_id = :caller OR {a}.namespace = :caller_inbox)")
    return " AND ".join(conds) or "1 = 1"


def _visibility(as_agent: str, params: dict[str, Any], dialect: Dialect, a: str) -> str:
    """projectors.visibility_rule in SQL: collective, own private, and team/unit/org up to the 3rd ancestor."""
    params["as_agent"] = as_agent
    parts = as_agent.split("/")
    rules = [f"{a}.scope = 'collective'", f"({a}.scope = 'private' AND {a}.namespace = :as_agent)"]
    for level, scope in ((1, "team"), (2, "unit"), (3, "org")):
        if len(parts) > level:
            ancestor = dialect.in_subtree(f"{a}.namespace", f"anc{level}", "/".join(parts[:-level]), params)
            rules.append(f"({a}.scope = '{scope}' AND {ancestor})")
    return "(" + " OR ".join(rules) + ")"


class SqlMemoryQueries(MemoryQueries):
    """The backend-neutral memory queries; keyword search, vectors and the size are the subclass's."""

    #: The column recording insertion order, where the backend orders ties by it explicitly (Postgres's
    #: ``seq``); None leaves ties in the natural rowid order (SQLite), so its query plans stay as they are.
    insertion: str | None = None
    #: How the stored vector is selected (:meth:`vector_bytes` turns it into float32 bytes).
    vector_column = "vector"

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    @abstractmethod
    def tag_test(self) -> str:
        """The condition that ``m``'s tags hold ``:tag``."""

    @abstractmethod
    def size_bytes(self) -> int:
        """The read model's size on disk."""

    @abstractmethod
    def vector_bytes(self, stored: Any) -> bytes:
        """A stored vector (as :attr:`vector_column` selects it) as little-endian float32 bytes."""

    @abstractmethod
    def keyword_match(self, pattern: str, params: dict[str, Any]) -> tuple[str, str] | None:
        """``(FROM clause with memories as m, condition)`` for the memories matching any token of ``pattern``
        (parameters added to ``params``); None when ``pattern`` has no token."""

    def _where(self, flt: MemoryFilter, params: dict[str, Any]) -> str:
        return memory_where(flt, params, self._sql.dialect, tag=self.tag_test())

    def _order(self, *keys: str) -> str:
        """ORDER BY ``keys``, then insertion order where the backend records it ("" when nothing to order by)."""
        keys = (*keys, self.insertion) if self.insertion else keys
        return f" ORDER BY {', '.join(keys)}" if keys else ""

    def _memories(self, sql: str, params: dict[str, Any]) -> list[Memory]:
        return [row_to_memory(r) for r in self._sql.rows(sql, params)]

    def _ids(self, sql: str, params: dict[str, Any]) -> list[str]:
        return [r["id"] for r in self._sql.rows(sql, params)]

    def _count(self, sql: str, params: dict[str, Any]) -> int:
        row = first(self._sql, sql, params)
        return int(row["n"]) if row is not None else 0

    def _batched(self, ids: Sequence[str], query: Callable[[Sequence[str]], Iterable[_T]]) -> list[_T]:
        """``query`` over ``ids`` a :meth:`~projectors.sql.Dialect.list_batch` at a time."""
        size = self._sql.dialect.list_batch()
        return [out for start in range(0, len(ids), size) for out in query(ids[start:start + size])]

    def get(self, memory_id: str) -> Memory | None:
        found = self._memories(f"SELECT {COLUMNS} FROM memories WHERE id = :id", {"id": memory_id})
        if found:
            return found[0]
        # Case-blind: SQLite's LIKE ignores ASCII case, and an id prefix typed in capitals must resolve anywhere.
        prefix = memory_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._memories(f"SELECT {COLUMNS} FROM memories WHERE id {self._sql.dialect.like_nocase()} :p "
                              f"ESCAPE '\\'{self._order()} LIMIT 21", {"p": prefix + "%"})
        if len(rows) > 1:
            raise AmbiguousIdError(memory_id, [m.id for m in rows])
        return rows[0] if rows else None

    def get_many(self, ids: list[str]) -> list[Memory]:
        return self._among(ids, "", {})

    def _among(self, ids: list[str], also: str, params: dict[str, Any]) -> list[Memory]:
        """The memories among ``ids`` that meet ``also`` (SQL over alias ``m``, or ""), in the order of ``ids``."""
        if not ids:
            return []
        among = self._sql.dialect.in_list("m.id", "id", ids, params)
        by_id = {m.id: m for m in self._memories(f"SELECT {M_COLUMNS} FROM memories m WHERE {among}{also}", params)}
        return [by_id[i] for i in ids if i in by_id]

    def find_by_title(self, title: str, namespace: str) -> Memory | None:
        found = self._memories(f"SELECT {COLUMNS} FROM memories WHERE title = :t AND namespace = :n",
                               {"t": title, "n": namespace})
        return found[0] if found else None

    def list_memories(self, flt: MemoryFilter, *, limit: int, offset: int) -> list[Memory]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        order = self._order("m.priority DESC", "m.updated_at DESC")
        return self._memories(f"SELECT {M_COLUMNS} FROM memories m WHERE {self._where(flt, params)}{order} "
                              "LIMIT :limit OFFSET :offset", params)

    def expired_ids(self, now: str, *, limit: int = 10_000) -> list[str]:
        return self._ids(f"SELECT id FROM memories WHERE expires_at IS NOT NULL AND expires_at < :now"
                         f"{self._order('expires_at')} LIMIT :limit", {"now": now, "limit": limit})

    def forget_ids(self, *, namespace: str | None, pattern: str | None, tier: str | None) -> list[str]:
        params: dict[str, Any] = {"namespace": namespace, "tier": tier}
        conds = [cond for value, cond in ((namespace, "m.namespace = :namespace"), (tier, "m.tier = :tier"))
                 if value is not None]
        source = "memories m"
        if pattern is not None:
            match = self.keyword_match(pattern, params)
            if match is None:
                return []
            source, cond = match
            conds.append(cond)
        return self._ids(f"SELECT m.id FROM {source} WHERE {' AND '.join(conds) or '1 = 1'} ORDER BY m.id", params)

    def namespaces(self, now: str) -> list[NamespaceCount]:
        rows = self._sql.rows("SELECT namespace, count(*) AS n FROM memories WHERE expires_at IS NULL OR "
                              "expires_at > :now GROUP BY namespace ORDER BY n DESC, namespace", {"now": now})
        return [NamespaceCount(r["namespace"], r["n"]) for r in rows]

    def stats(self, now: str, soon: str) -> Stats:
        by_tier = [{"tier": r["tier"], "count": r["n"]} for r in self._sql.rows(
            "SELECT tier, count(*) AS n FROM memories GROUP BY tier ORDER BY n DESC, tier", {})]
        by_ns = [{"namespace": r["namespace"], "count": r["n"]} for r in self._sql.rows(
            "SELECT namespace, count(*) AS n FROM memories GROUP BY namespace ORDER BY n DESC, namespace", {})]
        expiring = self._count("SELECT count(*) AS n FROM memories WHERE expires_at IS NOT NULL AND "
                               "expires_at > :now AND expires_at <= :soon", {"now": now, "soon": soon})
        return Stats(total=self._count("SELECT count(*) AS n FROM memories", {}), by_tier=by_tier,
                     by_namespace=by_ns, expiring_soon=expiring, db_size_bytes=self.size_bytes())

    def export(self, now: str) -> list[Memory]:
        return self._memories(f"SELECT {COLUMNS} FROM memories WHERE expires_at IS NULL OR expires_at > :now "
                              "ORDER BY created_at, id", {"now": now})

    def vectors(self, ids: list[str], *, model: str | None = None) -> dict[str, bytes]:
        only = "" if model is None else " AND model = :model"

        def chunk(part: Sequence[str]) -> Iterable[tuple[str, bytes]]:
            params: dict[str, Any] = {"model": model}
            where = self._sql.dialect.in_list("id", "id", part, params)
            rows = self._sql.rows(f"SELECT id, {self.vector_column} AS vector FROM memory_vectors "
                                  f"WHERE {where}{only}", params)
            return [(r["id"], self.vector_bytes(r["vector"])) for r in rows]

        return dict(self._batched(ids, chunk))

    def vector_count(self) -> int:
        return self._count("SELECT count(*) AS n FROM memory_vectors", {})

    def get_filtered(self, ids: list[str], flt: MemoryFilter) -> list[Memory]:
        params: dict[str, Any] = {}
        return self._among(ids, f" AND {self._where(flt, params)}", params) if ids else []

    def expiring_ids(self, now: str) -> list[str]:
        return self._ids("SELECT id FROM memories WHERE expires_at IS NOT NULL AND expires_at <= :now", {"now": now})

    def embedding_sources(self, *, after_id: str = "", limit: int = 1000) -> list[tuple[str, str, str]]:
        rows = self._sql.rows("SELECT id, title, content FROM memories WHERE id > :after ORDER BY id LIMIT :limit",
                              {"after": after_id, "limit": limit})
        return [(r["id"], r["title"], r["content"]) for r in rows]

    def tombstoned(self, ids: list[str]) -> set[str]:
        def chunk(part: Sequence[str]) -> list[str]:
            params: dict[str, Any] = {}
            return self._ids(f"SELECT id FROM memory_tombstones WHERE "
                             f"{self._sql.dialect.in_list('id', 'id', part, params)}", params)

        return set(self._batched(list(dict.fromkeys(ids)), chunk))

    def all_memories(self) -> list[Memory]:
        return self._memories(f"SELECT {COLUMNS} FROM memories ORDER BY id", {})
