"""The FTS5 indexes of the SQLite read model match its memories after every batch, whatever the batch held.

The triggers queue the indexes' changes and the batch feeds them in before it commits
(projectors/sqlite/text_queue.py): stores, title, content and tag updates, deletes and re-stores of one memory
in one batch or spread over several must leave both indexes as FTS5's own check against the memories table
expects, with the queue empty, and a search finds each memory by its current words only.
"""

from __future__ import annotations

import random
import sqlite3
import uuid
from pathlib import Path

import pytest

from infra.log import LogRecord
from projectors import SQLiteReadModel, Verdict
from schemas import Memory, NodeKey, encode_payload, now_ts
from schemas.events import EventPayload, MemoryChanges, MemoryDeleted, MemoryStored, MemoryUpdated
from tests.factories import node_key, signed

PART = "p"


class _Writer:
    """Random memory events over a few memories, with the words each live memory holds now."""

    def __init__(self, key: NodeKey, rng: random.Random) -> None:
        self.key, self.rng = key, rng
        self.words: dict[str, dict[str, str]] = {}  # live memory id → column → its one searchable word
        self.offset = 0

    def _word(self) -> str:
        return f"w{self.rng.randrange(10**9)}"

    def _record(self, event_type: str, payload: EventPayload) -> LogRecord:
        self.offset += 1
        return LogRecord(PART, self.offset, signed(self.key, event_type=event_type, payload=encode_payload(payload)))

    def next(self) -> LogRecord:
        live = sorted(self.words)
        choice = self.rng.random()
        if not live or choice < 0.3:
            memory_id, now = str(uuid.uuid4()), now_ts()
            words = {"title": self._word(), "content": self._word(), "tags": self._word()}
            self.words[memory_id] = words
            memory = Memory(id=memory_id, tier="long", namespace="global", title=f"t {words['title']}",
                            content=f"c {words['content']}", tags=[words["tags"]], priority=5, confidence=1.0,
                            source="api", access_count=0, created_at=now, updated_at=now)
            return self._record(MemoryStored.TYPE, MemoryStored(memory))
        memory_id = self.rng.choice(live)
        if choice < 0.45:
            del self.words[memory_id]
            return self._record(MemoryDeleted.TYPE, MemoryDeleted(memory_id))
        column = self.rng.choice(["title", "content", "tags"])
        word = self._word()
        self.words[memory_id][column] = word
        changes = {"title": MemoryChanges(title=f"t {word}"), "content": MemoryChanges(content=f"c {word}"),
                   "tags": MemoryChanges(tags=[word])}[column]
        return self._record(MemoryUpdated.TYPE, MemoryUpdated(memory_id, changes, now_ts()))


def _found(db: sqlite3.Connection, table: str, word: str) -> list[str]:
    return [str(r[0]) for r in db.execute(f"SELECT m.id FROM {table} f JOIN memories m ON m.rowid = f.rowid "
                                          f"WHERE {table} MATCH ?", (f'"{word}"',))]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_both_indexes_match_the_memories_after_every_batch(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    writer = _Writer(node_key(tmp_path), rng)
    model = SQLiteReadModel(tmp_path / "readmodel.db")
    db = model._db
    gone: list[str] = []  # words no memory holds any more
    try:
        for _ in range(25):
            before = {i: dict(w) for i, w in writer.words.items()}
            batch = [writer.next() for _ in range(rng.choice([1, 2, 5, 12]))]
            result = model.apply_batch([Verdict(r) for r in batch])
            assert result.rejected == 0
            for memory_id, words in before.items():
                gone += [w for column, w in words.items() if writer.words.get(memory_id, {}).get(column) != w]
            assert db.execute("SELECT count(*) FROM text_index_queue").fetchone()[0] == 0
            for table in ("memories_fts", "memories_title_fts"):
                db.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)")
            for memory_id, words in writer.words.items():
                assert _found(db, "memories_fts", words["content"]) == [memory_id]
                assert _found(db, "memories_fts", words["tags"]) == [memory_id]
                assert _found(db, "memories_title_fts", words["title"]) == [memory_id]
            for word in gone:
                assert _found(db, "memories_fts", word) == []
                assert _found(db, "memories_title_fts", word) == []
    finally:
        model.close()
