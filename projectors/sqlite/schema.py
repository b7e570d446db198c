"""DDL of the SQLite read model: memories + FTS5 external-content index, rank table, tracking, rejections."""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import sqlite3
from pathlib import Path

from projectors.errors import ReadModelError
from projectors.sqlite.domains import DOMAIN_DDL
from projectors.sqlite.text_queue import QUEUE_DDL, queued

__all__ = ["BUSY_TIMEOUT_MS", "FEED_TAIL", "GENERATION_KEY", "SCHEMA_VERSION", "connect", "drop_index_triggers",
           "open_elsewhere", "restore_index_triggers"]

log = logging.getLogger("ai_memory.readmodel")

SCHEMA_VERSION = 7

_DDL = """
CREATE TABLE IF NOT EXISTS memories (
    id               TEXT PRIMARY KEY,
    tier             TEXT NOT NULL,
    namespace        TEXT NOT NULL,
    title            TEXT NOT NULL,
    content          TEXT NOT NULL,
    tags             TEXT NOT NULL DEFAULT '[]',
    priority         INTEGER NOT NULL DEFAULT 5,
    confidence       REAL NOT NULL DEFAULT 1.0,
    source           TEXT NOT NULL DEFAULT 'api',
    access_count     INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    last_accessed_at TEXT,
    expires_at       TEXT,
    metadata         TEXT NOT NULL DEFAULT '{}',
    agent_id         TEXT GENERATED ALWAYS AS (json_extract(metadata, '$.agent_id')) VIRTUAL,
    scope            TEXT GENERATED ALWAYS AS (coalesce(json_extract(metadata, '$.scope'), 'private')) VIRTUAL,
    UNIQUE (title, namespace)
);

CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(
    title, content, tags, content='memories', content_rowid='rowid'
);
-- Titles alone, for the potential-contradictions check every store makes: a column filter on memories_fts
-- still reads each word's postings across all columns (2 ms at 100k memories); this index reads titles only.
CREATE VIRTUAL TABLE IF NOT EXISTS memories_title_fts USING fts5(
    title, content='memories', content_rowid='rowid'
);

-- What the keyword score needs of each memory, in a narrow table keyed by the memory's rowid: scoring thousands
-- of FTS matches against the wide memories rows cost as much again as the bm25 ranking itself. The static part
-- of the original's score (priority, access count, confidence; the tier bonus apart, search leaves it out) is
-- precomputed; only bm25 and the recency term are computed per query.
CREATE TABLE IF NOT EXISTS memory_rank (
    rid        INTEGER PRIMARY KEY,
    boost      REAL NOT NULL,
    tier_bonus REAL NOT NULL,
    updated_jd REAL NOT NULL,
    expires_at TEXT,
    namespace  TEXT NOT NULL,
    tier       TEXT NOT NULL,
    priority   INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    scope      TEXT NOT NULL,
    agent_id   TEXT
);

-- One vector per memory, from its latest memory.embedded event. An event that sets the title or content drops
-- it (the producer's memory.embedded for the new text follows in the same append), so a stale vector never
-- outlives the text it was computed from.
CREATE TABLE IF NOT EXISTS memory_vectors (
    id     TEXT PRIMARY KEY,
    model  TEXT NOT NULL,
    dim    INTEGER NOT NULL,
    vector BLOB NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS memory_vectors_ad AFTER DELETE ON memories BEGIN
    DELETE FROM memory_vectors WHERE id = old.id;
END;
CREATE TRIGGER IF NOT EXISTS memory_vectors_au AFTER UPDATE OF title, content ON memories BEGIN
    DELETE FROM memory_vectors WHERE id = old.id;
END;

-- Memories removed by memory.deleted: their ids never come back (a later stored or imported event for one is
-- rejected, sync/push refuses copies of them). Bulk forget and GC expiry leave no tombstone.
CREATE TABLE IF NOT EXISTS memory_tombstones (
    id TEXT PRIMARY KEY
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS tracking (
    projection TEXT NOT NULL,
    partition  TEXT NOT NULL,
    "offset"   INTEGER NOT NULL,
    PRIMARY KEY (projection, partition)
);
CREATE TABLE IF NOT EXISTS applied_events (
    event_id TEXT PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected_events (
    partition TEXT NOT NULL,
    "offset"  INTEGER NOT NULL,
    event_id  TEXT NOT NULL,
    type      TEXT NOT NULL,
    reason    TEXT NOT NULL,
    PRIMARY KEY (partition, "offset")
);
CREATE TABLE IF NOT EXISTS model_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_MEMORY_INDEXES = """
CREATE INDEX IF NOT EXISTS memories_namespace ON memories (namespace);
CREATE INDEX IF NOT EXISTS memories_rank ON memories (priority DESC, updated_at DESC);
CREATE INDEX IF NOT EXISTS memories_expires ON memories (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS memories_created ON memories (created_at);
CREATE INDEX IF NOT EXISTS memories_agent ON memories (agent_id);
"""

# Keyword recall ranks only the matches that can still reach the top (projectors/sqlite/pruning.py): it reads
# the static part's range and the few memories updated in the future (their recency term is unbounded). Kept
# during a bulk replay too (queries may run on the connection meanwhile; pruning names them in INDEXED BY).
_RANK_INDEXES = """
CREATE INDEX IF NOT EXISTS memory_rank_static ON memory_rank (boost + tier_bonus);
CREATE INDEX IF NOT EXISTS memory_rank_updated ON memory_rank (updated_jd);
"""

_RANK_COLUMNS = ("rid, boost, tier_bonus, updated_jd, expires_at, namespace, tier, priority, created_at, scope, "
                 "agent_id")
_RANK_VALUES = """new.rowid, new.priority * 0.5 + min(new.access_count, 50) * 0.1 + new.confidence * 2.0,
        CASE new.tier WHEN 'long' THEN 3.0 WHEN 'mid' THEN 1.0 ELSE 0.0 END,
        coalesce(julianday(new.updated_at), 0.0), new.expires_at, new.namespace, new.tier, new.priority,
        new.created_at, new.scope, new.agent_id"""

# The row-by-row maintenance of the FTS and rank indexes; a bulk replay drops these and rebuilds both at the end.
# The FTS changes are queued and reach the indexes once per batch (projectors/sqlite/text_queue.py says why).
_INDEX_TRIGGERS = f"""
CREATE TRIGGER IF NOT EXISTS memories_ai AFTER INSERT ON memories BEGIN
    {queued("add", "new", "both")}
    INSERT INTO memory_rank ({_RANK_COLUMNS}) VALUES ({_RANK_VALUES});
END;
CREATE TRIGGER IF NOT EXISTS memories_ad AFTER DELETE ON memories BEGIN
    {queued("delete", "old", "both")}
    DELETE FROM memory_rank WHERE rid = old.rowid;
END;
CREATE TRIGGER IF NOT EXISTS memories_au AFTER UPDATE OF title, content, tags ON memories BEGIN
    {queued("delete", "old", "main")}
    {queued("add", "new", "main")}
END;
CREATE TRIGGER IF NOT EXISTS memories_title_au AFTER UPDATE OF title ON memories BEGIN
    {queued("delete", "old", "title")}
    {queued("add", "new", "title")}
END;
CREATE TRIGGER IF NOT EXISTS memory_rank_au AFTER UPDATE ON memories BEGIN
    INSERT OR REPLACE INTO memory_rank ({_RANK_COLUMNS}) VALUES ({_RANK_VALUES});
END;
"""
# The change feed the in-process lexical index catches up from (projectors/sqlite/lexical_index.py): the rowid
# of every memory whose indexed text appeared, changed or went, in commit order, in a table of its own so the
# triggers above stay as they were. Only a bounded tail is kept: an index further behind rebuilds. A bulk
# replay drops these too and starts a new generation (restore_index_triggers).
_FEED_DDL = """
CREATE TABLE IF NOT EXISTS memory_changes (
    seq INTEGER PRIMARY KEY,
    rid INTEGER NOT NULL
);
"""
FEED_TAIL = 16384
_FEED_TRIGGERS = f"""
CREATE TRIGGER IF NOT EXISTS memory_changes_ai AFTER INSERT ON memories BEGIN
    INSERT INTO memory_changes (rid) VALUES (new.rowid);
END;
CREATE TRIGGER IF NOT EXISTS memory_changes_ad AFTER DELETE ON memories BEGIN
    INSERT INTO memory_changes (rid) VALUES (old.rowid);
END;
CREATE TRIGGER IF NOT EXISTS memory_changes_au AFTER UPDATE OF title, content, tags ON memories BEGIN
    INSERT INTO memory_changes (rid) VALUES (new.rowid);
END;
CREATE TRIGGER IF NOT EXISTS memory_changes_prune AFTER INSERT ON memory_changes WHEN new.seq % 1024 = 0 BEGIN
    DELETE FROM memory_changes WHERE seq <= new.seq - {FEED_TAIL};
END;
"""
#: model_meta key of the feed's generation: a new random value whenever the feed starts over (a bulk replay).
GENERATION_KEY = "lexical_generation"
_TRIGGER_NAMES = ("memories_ai", "memories_ad", "memories_au", "memories_title_au", "memory_rank_au",
                  "memory_changes_ai", "memory_changes_ad", "memory_changes_au", "memory_changes_prune")
# Every table and index (not the row-by-row triggers): idempotent, so it also restores what a bulk replay dropped.
_SCHEMA_DDL = _DDL + QUEUE_DDL + _FEED_DDL + _MEMORY_INDEXES + _RANK_INDEXES + "".join(DOMAIN_DDL)


#: How long a statement waits for another connection's lock before it fails (a reader never waits in WAL mode).
BUSY_TIMEOUT_MS = 10_000


def _open(path: Path | str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    # The log is the durable truth; the read model can be rebuilt, so it need not fsync every commit.
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _stored_version(db: sqlite3.Connection) -> int | None:
    try:
        row = db.execute("SELECT value FROM model_meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else int(row[0])


#: The byte of a WAL database's ``-shm`` file on which every connection that has the database open holds a shared
#: POSIX lock (SQLite's unix VFS: ``UNIX_SHM_DMS``, after the eight WAL locks from byte 120).
_SHM_DMS_BYTE = 128


def open_elsewhere(path: Path | str) -> bool:
    """Whether another process has the read model at ``path`` open: it holds SQLite's shared lock on the
    ``-shm`` file, so a write lock there is refused. Ask with no connection of this process open on the file
    (POSIX locks belong to the process, and closing any descriptor of the file drops them all)."""
    try:
        fd = os.open(str(path) + "-shm", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS_BYTE, os.SEEK_SET)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, _SHM_DMS_BYTE, os.SEEK_SET)
        return False
    finally:
        os.close(fd)


def connect(path: Path | str) -> sqlite3.Connection:
    """Open (and create) a read-model database. ``":memory:"`` works for tests.

    A file written by another schema version is deleted and recreated empty: read models are disposable, and
    the projector then replays the log into the new schema. Not while another process has it open (a server of
    the older version, or another node sharing the file): deleting it under them would split the model in two.

    Raises:
        ReadModelError: the file has another schema version and another process has it open.
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = _open(path)
    version = _stored_version(db)
    if version is not None and version != SCHEMA_VERSION and str(path) != ":memory:":
        db.close()
        if open_elsewhere(path):
            msg = (f"read model {path} has schema version {version}, this ai-memory needs {SCHEMA_VERSION}, and "
                   "another process has it open (a server of the other version, or another node sharing it): "
                   "stop every process using it, then start again; the file is then rebuilt from the log")
            raise ReadModelError(msg)
        log.warning("read model %s has schema version %s, not %s: rebuilding it from the log", path, version,
                    SCHEMA_VERSION)
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        db = _open(path)
    db.executescript(_SCHEMA_DDL + _INDEX_TRIGGERS + _FEED_TRIGGERS)
    db.execute("INSERT OR IGNORE INTO model_meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    db.execute("INSERT OR IGNORE INTO model_meta (key, value) VALUES (?, ?)", (GENERATION_KEY, _new_generation()))
    return db


def _new_generation() -> str:
    """Random, not counted: two files (a rebuilt copy, a restored backup) must never share one by chance."""
    return secrets.token_hex(8)


# Secondary indexes only queries use, no applier: a bulk replay builds them once, sorted, at the end.
_BULK_INDEXES = ("memories_namespace", "memories_rank", "memories_expires", "memories_created", "memories_agent",
                 "graph_nodes_title")


def drop_index_triggers(db: sqlite3.Connection) -> None:
    """Stop maintaining the FTS and rank indexes row by row (for a bulk replay into an empty model), and write
    the scratch file without a rollback journal on disk or fsyncs: until it is whole it is thrown away on any
    failure, and a batch that fails still rolls back (the journal is kept in memory)."""
    for name in _TRIGGER_NAMES:
        db.execute(f"DROP TRIGGER IF EXISTS {name}")
    for name in _BULK_INDEXES:
        db.execute(f"DROP INDEX IF EXISTS {name}")
    # No generation while the triggers are off: the lexical index falls back to FTS5 until the restore.
    db.execute("DELETE FROM model_meta WHERE key = ?", (GENERATION_KEY,))
    db.execute("PRAGMA journal_mode=MEMORY")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-262144")


def restore_index_triggers(db: sqlite3.Connection) -> None:
    """Rebuild the FTS and rank indexes from the memories table in one pass, then maintain them again."""
    db.execute("INSERT INTO memories_fts (memories_fts) VALUES ('rebuild')")
    db.execute("INSERT INTO memories_title_fts (memories_title_fts) VALUES ('rebuild')")
    db.execute("DELETE FROM memory_rank")
    values = _RANK_VALUES.replace("new.", "")
    db.execute(f"INSERT INTO memory_rank ({_RANK_COLUMNS}) SELECT {values} FROM memories")
    db.executescript(_INDEX_TRIGGERS + _FEED_TRIGGERS + _SCHEMA_DDL)
    db.execute("DELETE FROM memory_changes")
    db.execute("INSERT OR REPLACE INTO model_meta (key, value) VALUES (?, ?)", (GENERATION_KEY, _new_generation()))
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
