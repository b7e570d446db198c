"""The knowledge graph's reads, as of any log offset (``at``; None = now), over either read model.

The SQL is portable (see :mod:`projectors.graph_store`), so the backends differ only in the
:class:`~projectors.sql.Sql` that runs it: what the graph answers cannot drift between SQLite and Postgres.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from projectors.graph_store import CURRENT, LINK_COLUMNS, NODE_COLUMNS, at_clause, link_row, node_row
from projectors.graph_walk import LinkRow, NodeRow
from projectors.sql import Sql, chunks, in_list

__all__ = ["Entity", "GraphQueries", "TimelineRow"]


@dataclass(frozen=True, slots=True)
class TimelineRow:
    link: LinkRow
    node: NodeRow


@dataclass(frozen=True, slots=True)
class Entity:
    node: NodeRow
    aliases: list[str]


class GraphQueries:
    """Links, graph nodes and entities; every method takes ``at`` (a log offset; None = the current state)."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def _rows(self, sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return self._sql.rows(sql, params)

    def _at(self, at: int | None) -> dict[str, Any]:
        return {"at": CURRENT if at is None else at}

    def _by_ids(self, sql: str, column: str, ids: Sequence[str], at: int | None) -> list[Mapping[str, Any]]:
        out: list[Mapping[str, Any]] = []
        for chunk in chunks(list(ids)):
            placeholders, params = in_list(chunk, "i")
            out.extend(self._rows(sql.replace("{ids}", f"{column} IN ({placeholders})"), {**params, **self._at(at)}))
        return out

    def out_links(self, ids: Sequence[str], *, at: int | None = None) -> list[LinkRow]:
        """The links whose source is one of ``ids``."""
        sql = f"SELECT {LINK_COLUMNS} FROM graph_links l WHERE {{ids}} AND {at_clause('l')}"
        return [link_row(r) for r in self._by_ids(sql, "l.source_id", ids, at)]

    def in_links(self, ids: Sequence[str], *, at: int | None = None) -> list[LinkRow]:
        """The links whose target is one of ``ids``."""
        sql = f"SELECT {LINK_COLUMNS} FROM graph_links l WHERE {{ids}} AND {at_clause('l')}"
        return [link_row(r) for r in self._by_ids(sql, "l.target_id", ids, at)]

    def links_of(self, memory_id: str, *, at: int | None = None) -> list[LinkRow]:
        """Both directions, oldest first (the original's get_links)."""
        rows = self.out_links([memory_id], at=at) + self.in_links([memory_id], at=at)
        return sorted(rows, key=lambda r: (r.created_at, r.source_id, r.target_id, r.relation))

    def link(self, source_id: str, target_id: str, relation: str, *, at: int | None = None) -> LinkRow | None:
        rows = self._rows(f"SELECT {LINK_COLUMNS} FROM graph_links l WHERE l.source_id = :s AND l.target_id = :t "
                          f"AND l.relation = :r AND {at_clause('l')}",
                          {"s": source_id, "t": target_id, "r": relation, **self._at(at)})
        return link_row(rows[0]) if rows else None

    def nodes(self, ids: Sequence[str], *, at: int | None = None) -> dict[str, NodeRow]:
        """The memories among ``ids`` that existed at ``at``, as the graph shows them then."""
        sql = f"SELECT {NODE_COLUMNS} FROM graph_nodes n WHERE {{ids}} AND {at_clause('n')}"
        return {r["id"]: node_row(r) for r in self._by_ids(sql, "n.id", ids, at)}

    def all_links(self, *, at: int | None = None) -> list[LinkRow]:
        rows = self._rows(f"SELECT {LINK_COLUMNS} FROM graph_links l WHERE {at_clause('l')} "
                          "ORDER BY l.created_at, l.source_id, l.target_id, l.relation", self._at(at))
        return [link_row(r) for r in rows]

    def link_count(self, *, at: int | None = None) -> int:
        rows = self._rows(f"SELECT count(*) AS n FROM graph_links l WHERE {at_clause('l')}", self._at(at))
        return int(rows[0]["n"])

    def timeline(self, source_id: str, *, since: str | None, until: str | None, limit: int,
                 at: int | None = None) -> list[TimelineRow]:
        """Links out of ``source_id`` with a valid_from in [since, until], by valid_from then creation."""
        where = [f"l.source_id = :s AND l.valid_from IS NOT NULL AND {at_clause('l')} AND {at_clause('n')}"]
        params: dict[str, Any] = {"s": source_id, "lim": limit, **self._at(at)}
        if since is not None:
            where.append("l.valid_from >= :since")
            params["since"] = since
        if until is not None:
            where.append("l.valid_from <= :until")
            params["until"] = until
        columns = ", ".join(f"l.{c.strip()}" for c in LINK_COLUMNS.split(","))
        rows = self._rows(
            f"SELECT {columns}, n.id, n.title, n.namespace, n.scope, n.agent_id, n.kind, "
            f"n.created_at AS node_created_at FROM graph_links l JOIN graph_nodes n ON n.id = l.target_id "
            f"WHERE {' AND '.join(where)} ORDER BY l.valid_from, l.created_at, l.target_id, l.relation LIMIT :lim",
            params)
        return [TimelineRow(link_row(r), node_row({**r, "created_at": r["node_created_at"]})) for r in rows]

    def entity_named(self, canonical_name: str, namespace: str, *, at: int | None = None) -> NodeRow | None:
        """The memory titled ``canonical_name`` in ``namespace`` (entity or not: the caller checks ``kind``)."""
        rows = self._rows(f"SELECT {NODE_COLUMNS} FROM graph_nodes n WHERE n.namespace = :ns AND n.title = :t "
                          f"AND {at_clause('n')}", {"ns": namespace, "t": canonical_name, **self._at(at)})
        return node_row(rows[0]) if rows else None

    def aliases(self, entity_id: str, *, at: int | None = None) -> list[str]:
        rows = self._rows("SELECT alias FROM entity_aliases WHERE entity_id = :e AND from_offset <= :at "
                          "ORDER BY created_at, alias", {"e": entity_id, **self._at(at)})
        return [r["alias"] for r in rows]

    def entity_by_alias(self, alias: str, *, namespace: str | None, at: int | None = None) -> Entity | None:
        """The newest entity with this alias (in ``namespace`` when given), as the original picks it."""
        where = "AND n.namespace = :ns" if namespace is not None else ""
        rows = self._rows(
            f"SELECT {', '.join('n.' + c.strip() for c in NODE_COLUMNS.split(','))} FROM entity_aliases a "
            f"JOIN graph_nodes n ON n.id = a.entity_id WHERE a.alias = :a AND a.from_offset <= :at "
            f"AND n.kind = 'entity' AND {at_clause('n')} {where} ORDER BY n.created_at DESC, n.id LIMIT 1",
            {"a": alias, "ns": namespace, **self._at(at)} if namespace is not None else {"a": alias, **self._at(at)})
        if not rows:
            return None
        node = node_row(rows[0])
        return Entity(node, self.aliases(node.id, at=at))
