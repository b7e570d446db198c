"""The memory queries over the Postgres read model (tsvector + GIN for keywords, pgvector for vectors).

Where the answers differ from SQLite's, and why (see also docs/postgres.md):

* Keyword relevance. FTS5's bm25 weighs each phrase by its rarity in the whole table (idf) and by document
  length; Postgres has no corpus statistics in its ranking. The keyword term here is ``ts_rank`` over the same
  three columns, times :data:`KEYWORD_SCALE`. Everything else in the original's composite score (priority,
  access count, confidence, tier bonus, recency) is computed exactly as on SQLite, and which memories match a
  query is the same (same tokens, same AND/OR, phrases for each token). So the same memories come back, and
  their order agrees wherever the keyword term does not decide it.
* Tokens. FTS5's unicode61 and Postgres's parser (through the ``ai_memory`` configuration: ``simple`` after
  ``unaccent``) both fold case and accents and do not stem; Postgres also indexes a hyphenated word whole
  and in parts, and recognises e-mail addresses, URLs and numbers as single tokens.
* Ties. Rows with equal sort keys come back in insertion order (the ``seq`` column), as SQLite's rowid does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Engine, RowMapping, text

from projectors.fts import query_tokens
from projectors.postgres.apply import vector_literal
from projectors.postgres.errors import mapped_errors
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
from schemas import Memory, now_ts

__all__ = ["KEYWORD_SCALE", "PG_EF_SEARCH", "PostgresMemoryQueries", "keyword_bound", "tsquery"]

# ts_rank of one matching word in a short memory is about 0.06-0.1 (bm25 there is a few units): scaled so the
# keyword term weighs about as much against priority and recency as it does on SQLite.
KEYWORD_SCALE = 30.0
#: pgvector's hnsw.ef_search for recall (raised to k when k is larger): recall@10 ≥ 0.95 at 100k (bench_postgres).
PG_EF_SEARCH = 100
_TABLES = ("memories", "memory_vectors", "memory_tombstones", "archived_memories", "tracking", "applied_events",
           "rejected_events", "model_meta")
_COLUMNS = ("id, tier, namespace, title, content, tags, priority, confidence, source, access_count, created_at, "
            "updated_at, last_accessed_at, expires_at, metadata")
_M_COLUMNS = ", ".join(f"m.{c.strip()}" for c in _COLUMNS.split(","))


def row_to_memory(row: RowMapping) -> Memory:
    metadata = row["metadata"]
    return Memory(
        id=row["id"], tier=row["tier"], namespace=row["namespace"], title=row["title"], content=row["content"],
        tags=list(row["tags"]), priority=row["priority"], confidence=row["confidence"], source=row["source"],
        access_count=row["access_count"], created_at=row["created_at"], updated_at=row["updated_at"],
        last_accessed_at=row["last_accessed_at"], expires_at=row["expires_at"],
        metadata=metadata if isinstance(metadata, dict) else {})


def tsquery(text_: str, params: dict[str, Any], *, use_or: bool) -> str | None:
    """SQL for the query the keyword path's FTS5 expression means: each token a phrase, joined by AND (search)
    or OR (recall). None when no token is left (the FTS5 path's empty query)."""
    tokens = query_tokens(text_)
    if not tokens:
        return None
    parts = []
    for i, token in enumerate(tokens):
        params[f"q{i}"] = token
        parts.append(f"phraseto_tsquery('ai_memory', :q{i})")
    return "(" + (" || " if use_or else " && ").join(parts) + ")"


def keyword_bound(query_text: str) -> float:
    """The largest ts_rank a memory can get for a tsquery (its text form), every word of ``tsv`` carrying the
    'D' label (weight 0.1).

    With OR at the top, or a single word, PostgreSQL ranks with calc_rank_or: per query word a weighted sum of
    1/j² over its positions divided by π²/6 (so at most the weight), averaged over the words: at most 0.1. A
    phrase or AND at the top (a recall of one hyphenated token, say) ranks with calc_rank_and, below 1.
    """
    depth, quoted, operators = 0, False, set()
    for ch in query_text:
        if ch == "'":
            quoted = not quoted  # an escaped quote ('') toggles twice
        elif not quoted and ch in "()":
            depth += 1 if ch == "(" else -1
        elif not quoted and depth == 0 and ch in "|&<!":
            operators.add(ch)
    return 0.1 if "|" in operators or not operators else 1.0


def _where(flt: MemoryFilter, params: dict[str, Any], *, unexpired: bool = True) -> str:
    conds = ["TRUE"]
    if unexpired:
        params["now"] = flt.now
        conds.append("(m.expires_at IS NULL OR m.expires_at > :now)")
    if flt.namespaces:
        params["namespaces"] = list(flt.namespaces)
        conds.append("m.namespace = ANY(:namespaces)")
    elif flt.namespace is not None:
        params["namespace"] = flt.namespace
        conds.append("m.namespace = :namespace")
    simple = (("tier", "m.tier = :tier"), ("min_priority", "m.priority >= :min_priority"),
              ("since", "m.created_at >= :since"), ("until", "m.created_at <= :until"),
              ("agent_id", "m.agent_id = :agent_id"), ("tag", "m.tags @> jsonb_build_array(CAST(:tag AS text))"))
    for name, cond in simple:
        value = getattr(flt, name)
        if value is not None:
            params[name] = value
            conds.append(cond)
    if flt.as_agent is not None:
        conds.append(_visibility(flt.as_agent, params))
    for i, prefix in enumerate(flt.hidden_prefixes):
        params[f"hide{i}"] = prefix
        conds.append(f"NOT (m.namespace = :hide{i} OR starts_with(m.namespace, :hide{i} || '/'))")
    if flt.caller is not None:
        # projectors.owner_sees: another agent's private memory is left out (its inbox's recipient sees it).
        params["caller"], params["caller_inbox"] = flt.caller, inbox_of(flt.caller)
        conds.append("(m.scope <> 'private' OR m.agent_id = :caller OR m.namespace = :caller_inbox)")
    return " AND ".join(conds)


def _visibility(as_agent: str, params: dict[str, Any]) -> str:
    params["as_agent"] = as_agent
    parts = as_agent.split("/")
    rules = ["m.scope = 'collective'", "(m.scope = 'private' AND m.namespace = :as_agent)"]
    for level, scope in ((1, "team"), (2, "unit"), (3, "org")):
        if len(parts) > level:
            key = f"anc{level}"
            params[key] = "/".join(parts[:-level])
            rules.append(f"(m.scope = '{scope}' AND (m.namespace = :{key} OR "
                         f"starts_with(m.namespace, :{key} || '/')))")
    return "(" + " OR ".join(rules) + ")"


class PostgresMemoryQueries(MemoryQueries):
    """Reads run in autocommit on pooled connections, so they never hold a transaction open."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[RowMapping]:
        with mapped_errors(), self._engine.connect() as conn:
            return list(conn.execute(text(sql), params or {}).mappings())

    def _memories(self, sql: str, params: dict[str, Any] | None = None) -> list[Memory]:
        return [row_to_memory(r) for r in self._rows(sql, params)]

    def get(self, memory_id: str) -> Memory | None:
        found = self._memories(f"SELECT {_COLUMNS} FROM memories WHERE id = :id", {"id": memory_id})
        if found:
            return found[0]
        # ILIKE: SQLite's LIKE ignores ASCII case, and an id prefix typed in capitals must still resolve.
        prefix = memory_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._memories(f"SELECT {_COLUMNS} FROM memories WHERE id ILIKE :p ORDER BY seq LIMIT 21",
                              {"p": prefix + "%"})
        if len(rows) > 1:
            raise AmbiguousIdError(memory_id, [m.id for m in rows])
        return rows[0] if rows else None

    def get_many(self, ids: list[str]) -> list[Memory]:
        if not ids:
            return []
        by_id = {m.id: m for m in self._memories(f"SELECT {_COLUMNS} FROM memories WHERE id = ANY(:ids)",
                                                 {"ids": ids})}
        return [by_id[i] for i in ids if i in by_id]

    def find_by_title(self, title: str, namespace: str) -> Memory | None:
        found = self._memories(f"SELECT {_COLUMNS} FROM memories WHERE title = :t AND namespace = :n",
                               {"t": title, "n": namespace})
        return found[0] if found else None

    def list_memories(self, flt: MemoryFilter, *, limit: int, offset: int) -> list[Memory]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        return self._memories(f"SELECT {_M_COLUMNS} FROM memories m WHERE {_where(flt, params)} "
                              "ORDER BY m.priority DESC, m.updated_at DESC, m.seq LIMIT :limit OFFSET :offset",
                              params)

    def _ranked(self, query: str, flt: MemoryFilter, *, use_or: bool, limit: int,
                tier_bonus: bool) -> list[ScoredMemory]:
        params: dict[str, Any] = {"limit": limit, "now_jd": julian_day(flt.now or now_ts()),
                                  "scale": KEYWORD_SCALE}
        q = tsquery(query, params, use_or=use_or)
        if q is None:
            return []
        static = "m.boost + m.tier_bonus" if tier_bonus else "m.boost"
        score = f"ts_rank(m.tsv, {q}) * :scale + {static} + (1.0 / (1.0 + (:now_jd - m.updated_jd) * 0.1))"
        # The query is written inline, not joined from a subquery: only then does the planner use the GIN index.
        matches = f"m.tsv @@ {q} AND {_where(flt, params)}"
        if tier_bonus:
            matches += self._recall_floor(score, q, matches, params, limit)
        # Score and pick the winners on narrow columns first; only their full rows are read (as on SQLite).
        rows = self._rows(
            f"WITH top AS (SELECT m.id, m.seq, {score} AS score FROM memories m WHERE {matches} "
            f"ORDER BY score DESC, m.seq LIMIT :limit) SELECT {_M_COLUMNS}, top.score FROM top "
            "JOIN memories m ON m.id = top.id ORDER BY top.score DESC, top.seq", params)
        return [ScoredMemory(row_to_memory(r), float(r["score"])) for r in rows]

    def _recall_floor(self, score: str, q: str, matches: str, params: dict[str, Any], limit: int) -> str:
        """A condition that keeps every match that can still be in recall's top ``limit``, and few others.

        The score is ``keyword + static + recency`` with keyword at most :func:`keyword_bound` and recency at
        most 1 (for a memory not updated in the future). The ``limit`` matches with the largest static part (an
        index scan on ``memories_static_rank``) score at least F between them, so the top ``limit`` all score
        at least F, and a match whose static part is below F minus both bounds cannot reach it. Ranking only
        the others gives exactly the answer of ranking every match; for a common word it scores a fraction of
        them (a bitmap AND of the word's postings with the static-part index)."""
        probe = self._rows(f"SELECT {score} AS score, CAST({q} AS text) AS q FROM memories m WHERE {matches} "
                           "ORDER BY m.boost + m.tier_bonus DESC, m.seq LIMIT :limit", params)
        if len(probe) < limit:
            return ""  # fewer matches than asked for: all of them are ranked
        margin = KEYWORD_SCALE * keyword_bound(probe[0]["q"]) + 1.0 + 1e-6  # 1e-6: float4 rounding in ts_rank
        params["floor"] = min(float(r["score"]) for r in probe) - margin
        return " AND (m.boost + m.tier_bonus >= :floor OR m.updated_jd > :now_jd)"

    def search(self, query: str, flt: MemoryFilter, *, limit: int) -> list[Memory]:
        return [h.memory for h in self._ranked(query, flt, use_or=False, limit=limit, tier_bonus=False)]

    def recall_keyword(self, context: str, flt: MemoryFilter, *, limit: int) -> list[ScoredMemory]:
        return self._ranked(context, flt, use_or=True, limit=limit, tier_bonus=True)

    def recall_lexical(self, terms: list[str], flt: MemoryFilter, *, limit: int) -> list[ScoredMemory]:
        params: dict[str, Any] = {"limit": limit}
        q = tsquery(" ".join(terms), params, use_or=True)
        if q is None:
            return []
        rows = self._rows(
            f"WITH top AS (SELECT m.id, m.seq, ts_rank(m.tsv, {q}) AS score FROM memories m WHERE m.tsv @@ {q} AND "
            f"{_where(flt, params)} ORDER BY score DESC, m.seq LIMIT :limit) SELECT {_M_COLUMNS}, top.score FROM top "
            "JOIN memories m ON m.id = top.id ORDER BY top.score DESC, top.seq", params)
        # Divided by the most ts_rank can give this query, as SQLite divides bm25 by its bound: about 0..1.
        bound = keyword_bound(str(self._rows(f"SELECT CAST({q} AS text) AS q", params)[0]["q"]))
        return [ScoredMemory(row_to_memory(r), float(r["score"]) / bound) for r in rows]

    def similar_titles(self, title: str, namespace: str, *, limit: int = 5) -> list[str]:
        params: dict[str, Any] = {"namespace": namespace, "limit": limit}
        q = tsquery(title, params, use_or=True)
        if q is None:
            return []
        # The expression matches the r0003 index (and the query is inline), so this is an index scan.
        rows = self._rows(
            f"SELECT m.id FROM memories m WHERE m.namespace = :namespace AND to_tsvector('ai_memory', m.title) @@ {q} "
            f"ORDER BY ts_rank(to_tsvector('ai_memory', m.title), {q}) DESC, m.seq LIMIT :limit", params)
        return [r["id"] for r in rows]

    def expired_ids(self, now: str, *, limit: int = 10_000) -> list[str]:
        rows = self._rows("SELECT id FROM memories WHERE expires_at IS NOT NULL AND expires_at < :now "
                          "ORDER BY expires_at, seq LIMIT :limit", {"now": now, "limit": limit})
        return [r["id"] for r in rows]

    def forget_ids(self, *, namespace: str | None, pattern: str | None, tier: str | None) -> list[str]:
        params: dict[str, Any] = {"namespace": namespace, "tier": tier}
        cond = ("(CAST(:namespace AS text) IS NULL OR m.namespace = :namespace) "
                "AND (CAST(:tier AS text) IS NULL OR m.tier = :tier)")
        if pattern is not None:
            q = tsquery(pattern, params, use_or=True)
            if q is None:
                return []
            cond += f" AND m.tsv @@ {q}"
        return [r["id"] for r in self._rows(f"SELECT m.id FROM memories m WHERE {cond} ORDER BY m.id", params)]

    def namespaces(self, now: str) -> list[NamespaceCount]:
        rows = self._rows("SELECT namespace, count(*) AS n FROM memories WHERE expires_at IS NULL OR "
                          "expires_at > :now GROUP BY namespace ORDER BY n DESC, namespace", {"now": now})
        return [NamespaceCount(r["namespace"], r["n"]) for r in rows]

    def stats(self, now: str, soon: str) -> Stats:
        (total,) = self._rows("SELECT count(*) AS n FROM memories")
        by_tier = [{"tier": r["tier"], "count": r["n"]} for r in self._rows(
            "SELECT tier, count(*) AS n FROM memories GROUP BY tier ORDER BY n DESC, tier")]
        by_ns = [{"namespace": r["namespace"], "count": r["n"]} for r in self._rows(
            "SELECT namespace, count(*) AS n FROM memories GROUP BY namespace ORDER BY n DESC, namespace")]
        (expiring,) = self._rows("SELECT count(*) AS n FROM memories WHERE expires_at IS NOT NULL AND "
                                 "expires_at > :now AND expires_at <= :soon", {"now": now, "soon": soon})
        sizes = " + ".join(f"pg_total_relation_size('{t}')" for t in _TABLES)
        (size,) = self._rows(f"SELECT {sizes} AS n")
        return Stats(total=total["n"], by_tier=by_tier, by_namespace=by_ns, expiring_soon=expiring["n"],
                     db_size_bytes=int(size["n"]))

    def export(self, now: str) -> list[Memory]:
        return self._memories(f"SELECT {_COLUMNS} FROM memories WHERE expires_at IS NULL OR expires_at > :now "
                              "ORDER BY created_at, id", {"now": now})

    def vectors(self, ids: list[str], *, model: str | None = None) -> dict[str, bytes]:
        if not ids:
            return {}
        only = "" if model is None else " AND model = :model"
        rows = self._rows(f"SELECT id, CAST(vector AS text) AS v FROM memory_vectors WHERE id = ANY(:ids){only}",
                          {"ids": ids, "model": model})
        return {r["id"]: np.array(r["v"][1:-1].split(","), dtype="<f4").tobytes() for r in rows}

    def vector_count(self) -> int:
        (row,) = self._rows("SELECT count(*) AS n FROM memory_vectors")
        return int(row["n"])

    def nearest(self, query: bytes, k: int, *, ef_search: int = PG_EF_SEARCH, flt: MemoryFilter | None = None,
                excluded: Sequence[str] = (), model: str | None = None) -> list[tuple[str, float]]:
        """The ``k`` stored vectors closest to ``query`` by cosine, through the HNSW index: ``(id, cosine)``,
        best first. With ``flt``, only memories it admits (expiry, namespace, visibility, tag, tier, dates),
        minus ``excluded``, and only ``model``'s vectors when given: the filter runs inside the index scan,
        which keeps going (pgvector's iterative scan) until ``k`` rows pass it, so a narrow filter still gets its
        ``k`` nearest."""
        params: dict[str, Any] = {"q": vector_literal(query), "k": k}
        where = "TRUE"
        if flt is not None:
            where = _where(flt, params)
        if excluded:
            params["excluded"] = list(excluded)
            where += " AND NOT (v.id = ANY(:excluded))"
        if model is not None:
            params["model"] = model
            where += " AND v.model = :model"
        join = "JOIN memories m ON m.id = v.id " if flt is not None else ""
        with mapped_errors(), self._engine.connect() as conn:
            # Session settings on a pooled connection: every search sets both, so none leaks between callers.
            conn.execute(text(f"SET hnsw.ef_search = {max(int(ef_search), min(int(k), 1000))}"))
            conn.execute(text("SET hnsw.iterative_scan = relaxed_order"))
            rows = conn.execute(text(f"SELECT v.id, v.vector <=> CAST(:q AS vector) AS d FROM memory_vectors v {join}"
                                     f"WHERE {where} ORDER BY v.vector <=> CAST(:q AS vector) LIMIT :k"),
                                params).mappings()
            found = [(r["id"], 1.0 - float(r["d"])) for r in rows]
        # relaxed_order may return a hit slightly out of place: order them exactly.
        return sorted(found, key=lambda hit: -hit[1])

    def vector_count_in(self, namespace: str | None) -> int:
        """Vectors of memories in ``namespace`` (all with None)."""
        if namespace is None:
            return self.vector_count()
        (row,) = self._rows("SELECT count(*) AS n FROM memory_vectors v JOIN memories m ON m.id = v.id "
                            "WHERE m.namespace = :ns", {"ns": namespace})
        return int(row["n"])

    def filter_ids(self, ids: list[str], flt: MemoryFilter) -> list[str]:
        if not ids:
            return []
        params: dict[str, Any] = {"ids": ids}
        keep = {r["id"] for r in self._rows(f"SELECT m.id FROM memories m WHERE m.id = ANY(:ids) AND "
                                            f"{_where(flt, params)}", params)}
        return [i for i in ids if i in keep]

    def expiring_ids(self, now: str) -> list[str]:
        rows = self._rows("SELECT id FROM memories WHERE expires_at IS NOT NULL AND expires_at <= :now", {"now": now})
        return [r["id"] for r in rows]

    def embedding_sources(self, *, after_id: str = "", limit: int = 1000) -> list[tuple[str, str, str]]:
        rows = self._rows("SELECT id, title, content FROM memories WHERE id > :after ORDER BY id LIMIT :limit",
                          {"after": after_id, "limit": limit})
        return [(r["id"], r["title"], r["content"]) for r in rows]

    def tombstoned(self, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        return {r["id"] for r in self._rows("SELECT id FROM memory_tombstones WHERE id = ANY(:ids)", {"ids": ids})}

    def all_memories(self) -> list[Memory]:
        return self._memories(f"SELECT {_COLUMNS} FROM memories ORDER BY id")
