"""The memory queries over the SQLite read model (FTS5 for keywords)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from projectors.fts import EMPTY_QUERY, fts_query, query_tokens
from projectors.queries import (
    AmbiguousIdError,
    MemoryFilter,
    MemoryQueries,
    NamespaceCount,
    ScoredMemory,
    Stats,
    inbox_of,
    julian_day,
)
from projectors.sqlite import pruning, rank_first
from projectors.sqlite.pruning import rowid_list
from projectors.sqlite.second_reader import SecondReader
from schemas import Memory, now_ts

__all__ = ["SQLiteMemoryQueries", "row_to_memory"]

_COLUMNS = ("id, tier, namespace, title, content, tags, priority, confidence, source, access_count, created_at, "
            "updated_at, last_accessed_at, expires_at, metadata")
_M_COLUMNS = ", ".join(f"m.{c.strip()}" for c in _COLUMNS.split(","))
#: A recall whose phrases match at least this many memories (summed) ranks them in two halves, on two threads.
SPLIT_FROM = 4000

def row_to_memory(row: sqlite3.Row) -> Memory:
    try:
        metadata = json.loads(row["metadata"])
    except (TypeError, ValueError):
        metadata = {}
    return Memory(
        id=row["id"], tier=row["tier"], namespace=row["namespace"], title=row["title"], content=row["content"],
        tags=json.loads(row["tags"]), priority=row["priority"], confidence=row["confidence"], source=row["source"],
        access_count=row["access_count"], created_at=row["created_at"], updated_at=row["updated_at"],
        last_accessed_at=row["last_accessed_at"], expires_at=row["expires_at"],
        metadata=metadata if isinstance(metadata, dict) else {})


def _where(flt: MemoryFilter, params: dict[str, Any], *, unexpired: bool = True, alias: str = "m",
           rowid: str = "m.rowid") -> str:
    """SQL conditions for a filter over ``alias`` (``memories`` or the narrow ``memory_rank``, which carry the
    same filter columns); parameters are added to ``params``."""
    a = alias
    conds = ["1"]
    if unexpired:
        params["now"] = flt.now
        conds.append(f"({a}.expires_at IS NULL OR {a}.expires_at > :now)")
    if flt.namespaces:
        names = [f":ns{i}" for i in range(len(flt.namespaces))]
        params.update({f"ns{i}": ns for i, ns in enumerate(flt.namespaces)})
        conds.append(f"{a}.namespace IN ({', '.join(names)})")
    elif flt.namespace is not None:
        params["namespace"] = flt.namespace
        conds.append(f"{a}.namespace = :namespace")
    simple = (("tier", f"{a}.tier = :tier"), ("min_priority", f"{a}.priority >= :min_priority"),
              ("since", f"{a}.created_at >= :since"), ("until", f"{a}.created_at <= :until"),
              ("agent_id", f"{a}.agent_id = :agent_id"),
              ("tag", f"EXISTS (SELECT 1 FROM memories t, json_each(t.tags) j WHERE t.rowid = {rowid} "
                      "AND j.value = :tag)"))
    for name, cond in simple:
        value = getattr(flt, name)
        if value is not None:
            params[name] = value
            conds.append(cond)
    if flt.as_agent is not None:
        conds.append(_visibility(flt.as_agent, params, alias))
    for i, prefix in enumerate(flt.hidden_prefixes):
        conds.append(f"NOT {_in_subtree(a, f'hide{i}', prefix, params)}")
    if flt.caller is not None:
        # projectors.owner_sees: another agent's private memory is left out (its inbox's recipient sees it).
        params["caller"], params["caller_inbox"] = flt.caller, inbox_of(flt.caller)
        conds.append(f"({a}.scope <> 'private' OR {a}.agent_id = :caller OR {a}.namespace = :caller_inbox)")
    return " AND ".join(conds)


def _in_subtree(a: str, key: str, prefix: str, params: dict[str, Any]) -> str:
    """``namespace`` is ``prefix`` or below it. The names below ``p`` are exactly those in [``p/``, ``p0``)
    (``0`` follows ``/`` in byte order): two comparisons, cheaper per row than a substring."""
    params[key], params[key + "_lo"], params[key + "_hi"] = prefix, prefix + "/", prefix + "0"
    return f"({a}.namespace = :{key} OR ({a}.namespace >= :{key}_lo AND {a}.namespace < :{key}_hi))"


def _visibility(as_agent: str, params: dict[str, Any], a: str = "m") -> str:
    params["as_agent"] = as_agent
    parts = as_agent.split("/")
    rules = [f"{a}.scope = 'collective'", f"({a}.scope = 'private' AND {a}.namespace = :as_agent)"]
    for level, scope in ((1, "team"), (2, "unit"), (3, "org")):
        if len(parts) > level:
            ancestor = "/".join(parts[:-level])
            rules.append(f"({a}.scope = '{scope}' AND {_in_subtree(a, f'anc{level}', ancestor, params)})")
    return "(" + " OR ".join(rules) + ")"


class SQLiteMemoryQueries(MemoryQueries):
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._second = SecondReader.of(db)

    def close(self) -> None:
        """Close the second reader (the caller owns and closes ``db``)."""
        if self._second is not None:
            self._second.close()
            self._second = None

    def _one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._db.execute(sql, params).fetchone()
        return row

    def get(self, memory_id: str) -> Memory | None:
        row = self._one(f"SELECT {_COLUMNS} FROM memories WHERE id = ?", (memory_id,))
        if row is not None:
            return row_to_memory(row)
        prefix = memory_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM memories WHERE id LIKE ? ESCAPE '\\' LIMIT 21",
                                (prefix + "%",)).fetchall()
        if len(rows) > 1:
            raise AmbiguousIdError(memory_id, [r["id"] for r in rows])
        return row_to_memory(rows[0]) if rows else None

    def get_many(self, ids: list[str]) -> list[Memory]:
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM memories WHERE id IN ({marks})", ids).fetchall()
        by_id = {r["id"]: row_to_memory(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def find_by_title(self, title: str, namespace: str) -> Memory | None:
        row = self._one(f"SELECT {_COLUMNS} FROM memories WHERE title = ? AND namespace = ?", (title, namespace))
        return row_to_memory(row) if row is not None else None

    def list_memories(self, flt: MemoryFilter, *, limit: int, offset: int) -> list[Memory]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        sql = (f"SELECT {_M_COLUMNS} FROM memories m WHERE {_where(flt, params)} "
               "ORDER BY m.priority DESC, m.updated_at DESC LIMIT :limit OFFSET :offset")
        return [row_to_memory(r) for r in self._db.execute(sql, params)]

    def _ranked(self, match: str, flt: MemoryFilter, *, limit: int, tier_bonus: bool,
                phrases: Sequence[str] = ()) -> list[ScoredMemory]:
        """The best ``limit`` FTS matches by the original's composite score, scored over the narrow rank table;
        only the winners' full rows are read. With ``phrases`` (recall), only the matches that can still reach
        the top are scored (:mod:`projectors.sqlite.pruning`): the same answer, most matches skipped."""
        params: dict[str, Any] = {"match": match, "limit": limit, "now_jd": julian_day(flt.now or now_ts())}
        bonus = " + r.tier_bonus" if tier_bonus else ""
        where = _where(flt, params, alias="r", rowid="r.rid")

        def scored(match_param: str) -> str:
            return (f"SELECT r.rid, (fts.rank * -1) + r.boost{bonus} + (1.0 / (1.0 + (:now_jd - r.updated_jd) * 0.1))"
                    " AS score FROM memories_fts fts JOIN memory_rank r ON r.rid = fts.rowid "
                    f"WHERE memories_fts MATCH :{match_param} AND {where}")

        sql = scored("match")
        # The unary + keeps FTS5 scanning the whole match (a rowid lookup would recompute bm25's idf per row);
        # the membership test then runs before bm25 and the join, on each match.
        among = " AND +fts.rowid IN (SELECT value FROM json_each(:among))"

        def scores_of(rowids: list[int]) -> list[float]:
            return [float(r[1]) for r in self._db.execute(sql + among, {**params, "among": rowid_list(rowids)})]

        def lower(group: str) -> list[tuple[int, float]]:
            rows = self._db.execute(scored("group") + " LIMIT :probe",
                                    {**params, "group": group, "probe": pruning.PROBE_ROWS})
            return [(int(r[0]), float(r[1])) for r in rows]

        hits = pruning.phrase_hits(self._db, phrases) if phrases else {}
        pruned = pruning.prune(self._db, phrases, where, params, limit, scores_of, lower,
                               hits=hits) if phrases else None
        if pruned is not None:
            sql += (" AND (+fts.rowid IN (SELECT rowid FROM memories_fts WHERE memories_fts MATCH :essential) "
                    "OR +fts.rowid IN (SELECT value FROM json_each(:extra)))")
            params.update(essential=pruned.essential, extra=rowid_list(pruned.extra))
        return self._memories_of(self._best(sql, params, split=sum(hits.values()) >= SPLIT_FROM))

    def _memories_of(self, ranked: list[tuple[int, float]]) -> list[ScoredMemory]:
        """The full rows of ranked (rowid, score) pairs, in their order."""
        if not ranked:
            return []
        marks = ", ".join("?" for _ in ranked)
        rows = self._db.execute(f"SELECT rowid AS rid, {_COLUMNS} FROM memories WHERE rowid IN ({marks})",
                                [rid for rid, _ in ranked]).fetchall()
        by_rid = {r["rid"]: row_to_memory(r) for r in rows}
        return [ScoredMemory(by_rid[rid], score) for rid, score in ranked if rid in by_rid]

    def _best(self, sql: str, params: dict[str, Any], *, split: bool, key: str = "r.rid") -> list[tuple[int, float]]:
        """The ``:limit`` best (rowid, score) rows of ``sql``, ties broken by rowid (``key``); with ``split``, the
        rowids above the middle are ranked on the second reader meanwhile (FTS5 takes the rowid bounds itself)."""
        order = f" ORDER BY score DESC, {key} LIMIT :limit"
        (top,) = self._db.execute("SELECT max(rid) FROM memory_rank").fetchone() if split else (None,)
        if self._second is None or top is None:
            return [(int(r[0]), float(r[1])) for r in self._db.execute(sql + order, params)]
        halves = {**params, "middle": int(top) // 2}
        upper = self._second.fetch(sql + " AND fts.rowid > :middle" + order, halves)
        rows = self._db.execute(sql + " AND fts.rowid <= :middle" + order, halves).fetchall()
        both = [(int(r[0]), float(r[1])) for r in [*rows, *upper.result()]]
        return sorted(both, key=lambda r: (-r[1], r[0]))[:params["limit"]]

    def search(self, query: str, flt: MemoryFilter, *, limit: int) -> list[Memory]:
        match = fts_query(query, use_or=False)
        if match == EMPTY_QUERY:
            return []
        return [hit.memory for hit in self._ranked(match, flt, limit=limit, tier_bonus=False)]

    def recall_keyword(self, context: str, flt: MemoryFilter, *, limit: int) -> list[ScoredMemory]:
        match = fts_query(context, use_or=True)
        if match == EMPTY_QUERY:
            return []
        phrases = [f'"{t}"' for t in query_tokens(context)]  # as fts_query quotes them
        return self._ranked(match, flt, limit=limit, tier_bonus=True, phrases=phrases)

    def recall_lexical(self, terms: list[str], flt: MemoryFilter, *, limit: int) -> list[ScoredMemory]:
        if not terms:
            return []
        params: dict[str, Any] = {"match": " OR ".join(f'"{t}"' for t in terms), "limit": limit}
        where = _where(flt, params, alias="r", rowid="r.rid")
        sql = ("SELECT r.rid, -bm25(memories_fts) AS score FROM memories_fts fts "
               f"JOIN memory_rank r ON r.rid = fts.rowid WHERE memories_fts MATCH :match AND {where}")
        hits = pruning.phrase_hits(self._db, [f'"{t}"' for t in terms])
        (rows,) = self._db.execute("SELECT max(rid) FROM memory_rank").fetchone()  # ≥ the row count
        # Divided by the most any row could score (every phrase at saturation): 1.0 means every term matched,
        # so a match on one common term stays low however few other memories match.
        bound = sum(pruning.phrase_bound(int(rows or 0), n) for n in hits.values()) or 1.0
        split = sum(hits.values()) >= SPLIT_FROM
        # A broad filter is tested on the best matches only (rank_first: the same answer, no join per match).
        ranked = rank_first.passing(
            self._db, lambda n: self._best(rank_first.RANKED, {**params, "limit": n}, split=split,
                                           key=rank_first.RANK_KEY),
            where, params, limit=limit) if rank_first.is_broad(flt) else None
        if ranked is None:
            ranked = self._best(sql, params, split=split)
        return [ScoredMemory(h.memory, h.score / bound) for h in self._memories_of(ranked)]

    def similar_titles(self, title: str, namespace: str, *, limit: int = 5) -> list[str]:
        match = fts_query(title, use_or=True)
        if match == EMPTY_QUERY:
            return []
        rows = self._db.execute(
            "SELECT m.id FROM (SELECT t.rowid AS rid, t.rank AS rank FROM memories_title_fts t "
            "JOIN memory_rank r ON r.rid = t.rowid WHERE memories_title_fts MATCH ? AND r.namespace = ? "
            "ORDER BY t.rank LIMIT ?) best JOIN memories m ON m.rowid = best.rid ORDER BY best.rank",
            (match, namespace, limit)).fetchall()
        return [r["id"] for r in rows]

    def expired_ids(self, now: str, *, limit: int = 10_000) -> list[str]:
        rows = self._db.execute("SELECT id FROM memories WHERE expires_at IS NOT NULL AND expires_at < ? "
                                "ORDER BY expires_at LIMIT ?", (now, limit)).fetchall()
        return [r["id"] for r in rows]

    def forget_ids(self, *, namespace: str | None, pattern: str | None, tier: str | None) -> list[str]:
        params: dict[str, Any] = {"namespace": namespace, "tier": tier}
        cond = "(:namespace IS NULL OR m.namespace = :namespace) AND (:tier IS NULL OR m.tier = :tier)"
        if pattern is not None and fts_query(pattern, use_or=True) != EMPTY_QUERY:
            params["match"] = fts_query(pattern, use_or=True)
            sql = ("SELECT m.id FROM memories_fts fts JOIN memories m ON m.rowid = fts.rowid "
                   f"WHERE memories_fts MATCH :match AND {cond}")
        elif pattern is not None:
            return []
        else:
            sql = f"SELECT m.id FROM memories m WHERE {cond}"
        return [r["id"] for r in self._db.execute(sql + " ORDER BY m.id", params)]

    def namespaces(self, now: str) -> list[NamespaceCount]:
        rows = self._db.execute("SELECT namespace, count(*) AS n FROM memories WHERE expires_at IS NULL OR "
                                "expires_at > ? GROUP BY namespace ORDER BY n DESC, namespace", (now,)).fetchall()
        return [NamespaceCount(r["namespace"], r["n"]) for r in rows]

    def stats(self, now: str, soon: str) -> Stats:
        (total,) = self._db.execute("SELECT count(*) FROM memories").fetchone()
        by_tier = [{"tier": r[0], "count": r[1]} for r in self._db.execute(
            "SELECT tier, count(*) AS n FROM memories GROUP BY tier ORDER BY n DESC, tier")]
        by_ns = [{"namespace": r[0], "count": r[1]} for r in self._db.execute(
            "SELECT namespace, count(*) AS n FROM memories GROUP BY namespace ORDER BY n DESC, namespace")]
        (expiring,) = self._db.execute("SELECT count(*) FROM memories WHERE expires_at IS NOT NULL AND "
                                       "expires_at > ? AND expires_at <= ?", (now, soon)).fetchone()
        (pages,) = self._db.execute("PRAGMA page_count").fetchone()
        (page_size,) = self._db.execute("PRAGMA page_size").fetchone()
        return Stats(total=total, by_tier=by_tier, by_namespace=by_ns, expiring_soon=expiring,
                     db_size_bytes=pages * page_size)

    def export(self, now: str) -> list[Memory]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM memories WHERE expires_at IS NULL OR expires_at > ? "
                                "ORDER BY created_at, id", (now,))
        return [row_to_memory(r) for r in rows]

    def vectors(self, ids: list[str], *, model: str | None = None) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        only = "" if model is None else " AND model = ?"
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            params = [*chunk, model] if model is not None else chunk
            for row in self._db.execute(f"SELECT id, vector FROM memory_vectors WHERE id IN ({marks}){only}", params):
                out[row["id"]] = bytes(row["vector"])
        return out

    def vector_count(self) -> int:
        (n,) = self._db.execute("SELECT count(*) FROM memory_vectors").fetchone()
        return int(n)

    def filter_ids(self, ids: list[str], flt: MemoryFilter) -> list[str]:
        if not ids:
            return []
        params: dict[str, Any] = {f"id{i}": memory_id for i, memory_id in enumerate(ids)}
        marks = ", ".join(f":id{i}" for i in range(len(ids)))
        sql = f"SELECT m.id FROM memories m WHERE m.id IN ({marks}) AND {_where(flt, params)}"
        keep = {r["id"] for r in self._db.execute(sql, params)}
        return [i for i in ids if i in keep]

    def expiring_ids(self, now: str) -> list[str]:
        rows = self._db.execute("SELECT id FROM memories WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
        return [r["id"] for r in rows]

    def embedding_sources(self, *, after_id: str = "", limit: int = 1000) -> list[tuple[str, str, str]]:
        rows = self._db.execute("SELECT id, title, content FROM memories WHERE id > ? ORDER BY id LIMIT ?",
                                (after_id, limit))
        return [(r["id"], r["title"], r["content"]) for r in rows]

    def tombstoned(self, ids: list[str]) -> set[str]:
        unique = list(dict.fromkeys(ids))
        found: set[str] = set()
        for start in range(0, len(unique), 500):  # SQLite's bound-parameter limit
            chunk = unique[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            found.update(r[0] for r in self._db.execute(
                f"SELECT id FROM memory_tombstones WHERE id IN ({marks})", chunk))
        return found

    def all_memories(self) -> list[Memory]:
        return [row_to_memory(r) for r in self._db.execute(f"SELECT {_COLUMNS} FROM memories ORDER BY id")]
