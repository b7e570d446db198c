"""The memory queries over the SQLite read model: the shared :mod:`projectors.memory_queries`, plus keyword
ranking over FTS5 (bm25, pruned and split over two readers) or, for recall's lexical half, the in-memory
lexical index (:mod:`projectors.sqlite.lexical_index`: the same bm25, in numpy), and vectors stored as blobs."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from projectors.fts import EMPTY_QUERY, fts_query, query_tokens
from projectors.memory_queries import COLUMNS, SqlMemoryQueries, memory_where, row_to_memory
from projectors.queries import LexicalIndexStatus, MemoryFilter, ScoredMemory, julian_day
from projectors.sql import SQLITE
from projectors.sqlite import pruning, rank_first
from projectors.sqlite.lexical_index import LexicalIndex
from projectors.sqlite.pruning import rowid_list
from projectors.sqlite.second_reader import SecondReader, main_file
from projectors.sqlite.sql import SQLiteSql
from schemas import Memory, now_ts

__all__ = ["LEXICAL_INDEX_ENV", "SQLiteMemoryQueries", "row_to_memory"]

#: A recall whose phrases match at least this many memories (summed) ranks them in two halves, on two threads.
SPLIT_FROM = 4000
#: ``off`` ranks recall's lexical half with FTS5 itself instead of the in-memory index (the same answers).
LEXICAL_INDEX_ENV = "AI_MEMORY_LEXICAL_INDEX"


def _tag_in(rowid: str) -> str:
    """The tags of the memory at ``rowid`` hold ``:tag`` (the narrow rank table reaches them by its row id)."""
    return f"EXISTS (SELECT 1 FROM memories t, json_each(t.tags) j WHERE t.rowid = {rowid} AND j.value = :tag)"


class SQLiteMemoryQueries(SqlMemoryQueries):
    """The shared queries over a SQLite connection, with FTS5 (bm25) for keywords and vectors as blobs."""

    def __init__(self, db: sqlite3.Connection, *, build_now: bool = True) -> None:
        """``build_now=False`` leaves the lexical index's first build to the first recall (a bulk replay's
        scratch model: nothing to index until it is whole)."""
        super().__init__(SQLiteSql(db))
        self._db = db
        path = main_file(db)
        self._second = SecondReader(path) if path else None
        self._lexical: LexicalIndex | None = None
        if os.environ.get(LEXICAL_INDEX_ENV, "on") != "off":
            # Over a file, built in the background from now on (recall answers from FTS5 until it is ready).
            self._lexical = LexicalIndex(path or None)
            if build_now:
                self._lexical.start()

    def close(self) -> None:
        """Close the second reader and the lexical index (the caller owns and closes ``db``)."""
        if self._second is not None:
            self._second.close()
            self._second = None
        if self._lexical is not None:
            self._lexical.close()
            self._lexical = None

    def lexical_index_status(self) -> LexicalIndexStatus:
        return self._lexical.status() if self._lexical is not None else super().lexical_index_status()

    def lexical_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the lexical index to answer recalls (benchmarks, tests)."""
        return self._lexical is not None and self._lexical.wait_ready(timeout)

    def tag_test(self) -> str:
        return _tag_in("m.rowid")

    def size_bytes(self) -> int:
        (pages,) = self._db.execute("PRAGMA page_count").fetchone()
        (page_size,) = self._db.execute("PRAGMA page_size").fetchone()
        return int(pages * page_size)

    def vector_bytes(self, stored: Any) -> bytes:
        return bytes(stored)

    def keyword_match(self, pattern: str, params: dict[str, Any]) -> tuple[str, str] | None:
        match = fts_query(pattern, use_or=True)
        if match == EMPTY_QUERY:
            return None
        params["match"] = match
        return "memories_fts fts JOIN memories m ON m.rowid = fts.rowid", "memories_fts MATCH :match"

    def _ranked(self, match: str, flt: MemoryFilter, *, limit: int, tier_bonus: bool,
                phrases: Sequence[str] = ()) -> list[ScoredMemory]:
        """The best ``limit`` FTS matches by the original's composite score, scored over the narrow rank table;
        only the winners' full rows are read. With ``phrases`` (recall), only the matches that can still reach
        the top are scored (:mod:`projectors.sqlite.pruning`): the same answer, most matches skipped."""
        params: dict[str, Any] = {"match": match, "limit": limit, "now_jd": julian_day(flt.now or now_ts())}
        bonus = " + r.tier_bonus" if tier_bonus else ""
        where = memory_where(flt, params, SQLITE, tag=_tag_in("r.rid"), alias="r")

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
        rows = self._db.execute(f"SELECT rowid AS rid, {COLUMNS} FROM memories WHERE rowid IN ({marks})",
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
        matches = self._lexical.matches(self._db, terms) if self._lexical is not None else None
        if matches is None:
            return self._recall_lexical_fts(terms, flt, limit=limit)
        hits = dict(zip(terms, matches.hits, strict=True))  # one per distinct phrase, as pruning.phrase_hits
        params: dict[str, Any] = {}
        where = memory_where(flt, params, SQLITE, tag=_tag_in("r.rid"), alias="r")
        ranked = rank_first.passing_in_chunks(self._db, matches.best, where, params, limit=limit,
                                              matches=len(matches))
        if ranked is None:  # a narrow filter: FTS5 tests it during its scan, cheaper than testing rowids here
            return self._recall_lexical_fts(terms, flt, limit=limit, hits=hits)
        return self._normalised(ranked, hits)

    def _recall_lexical_fts(self, terms: list[str], flt: MemoryFilter, *, limit: int,
                            hits: dict[str, int] | None = None) -> list[ScoredMemory]:
        """:meth:`recall_lexical` by FTS5 itself: where the lexical index is off or cannot answer exactly
        (``hits``: each term's row count, when the index has counted them already)."""
        params: dict[str, Any] = {"match": " OR ".join(f'"{t}"' for t in terms), "limit": limit}
        where = memory_where(flt, params, SQLITE, tag=_tag_in("r.rid"), alias="r")
        sql = ("SELECT r.rid, -bm25(memories_fts) AS score FROM memories_fts fts "
               f"JOIN memory_rank r ON r.rid = fts.rowid WHERE memories_fts MATCH :match AND {where}")
        if hits is None:
            hits = pruning.phrase_hits(self._db, [f'"{t}"' for t in terms])
        split = sum(hits.values()) >= SPLIT_FROM
        # A broad filter is tested on the best matches only (rank_first: the same answer, no join per match).
        ranked = rank_first.passing(
            self._db, lambda n: self._best(rank_first.RANKED, {**params, "limit": n}, split=split,
                                           key=rank_first.RANK_KEY),
            where, params, limit=limit) if rank_first.is_broad(flt) else None
        if ranked is None:
            ranked = self._best(sql, params, split=split)
        return self._normalised(ranked, hits)

    def _normalised(self, ranked: list[tuple[int, float]], hits: dict[str, int]) -> list[ScoredMemory]:
        """The memories of ranked (rowid, bm25) pairs, each score divided by the most any row could score (every
        phrase at saturation): 1.0 means every term matched, so a match on one common term stays low however
        few other memories match."""
        (rows,) = self._db.execute("SELECT max(rid) FROM memory_rank").fetchone()  # ≥ the row count
        bound = sum(pruning.phrase_bound(int(rows or 0), n) for n in hits.values()) or 1.0
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
