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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Engine, text

from projectors.fts import query_tokens
from projectors.memory_queries import M_COLUMNS, SqlMemoryQueries, memory_where, row_to_memory
from projectors.postgres.apply import vector_literal
from projectors.postgres.errors import mapped_errors
from projectors.postgres.sql import PostgresReads
from projectors.queries import MemoryFilter, ScoredMemory, julian_day
from projectors.sql import POSTGRES
from schemas import Memory, now_ts

__all__ = ["KEYWORD_SCALE", "PG_EF_SEARCH", "PostgresMemoryQueries", "keyword_bound", "row_to_memory", "tsquery"]

# ts_rank of one matching word in a short memory is about 0.06-0.1 (bm25 there is a few units): scaled so the
# keyword term weighs about as much against priority and recency as it does on SQLite.
KEYWORD_SCALE = 30.0
#: pgvector's hnsw.ef_search for recall (raised to k when k is larger): recall@10 ≥ 0.95 at 100k (bench_postgres).
PG_EF_SEARCH = 100
_TABLES = ("memories", "memory_vectors", "memory_tombstones", "archived_memories", "tracking", "applied_events",
           "rejected_events", "model_meta")
#: JSON containment: the tags array holds ``:tag`` (GIN-indexable, unlike a scan of the elements).
_TAG = "m.tags @> jsonb_build_array(CAST(:tag AS text))"
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


def _where(flt: MemoryFilter, params: dict[str, Any]) -> str:
    return memory_where(flt, params, POSTGRES, tag=_TAG)


class PostgresMemoryQueries(SqlMemoryQueries):
    """The shared queries over Postgres, with tsvector (ts_rank) for keywords and pgvector for vectors."""

    insertion = "seq"
    vector_column = "CAST(vector AS text)"

    def __init__(self, engine: Engine) -> None:
        super().__init__(PostgresReads(engine))
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[Mapping[str, Any]]:
        return self._sql.rows(sql, params or {})

    def tag_test(self) -> str:
        return _TAG

    def size_bytes(self) -> int:
        sizes = " + ".join(f"pg_total_relation_size('{t}')" for t in _TABLES)
        return self._count(f"SELECT {sizes} AS n", {})

    def vector_bytes(self, stored: Any) -> bytes:
        return np.array(str(stored)[1:-1].split(","), dtype="<f4").tobytes()

    def keyword_match(self, pattern: str, params: dict[str, Any]) -> tuple[str, str] | None:
        q = tsquery(pattern, params, use_or=True)
        return None if q is None else ("memories m", f"m.tsv @@ {q}")

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
            f"ORDER BY score DESC, m.seq LIMIT :limit) SELECT {M_COLUMNS}, top.score FROM top "
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
            f"{_where(flt, params)} ORDER BY score DESC, m.seq LIMIT :limit) SELECT {M_COLUMNS}, top.score FROM top "
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
