"""The FTS5 indexes' changes, queued by the memories triggers and applied once per batch, just before it commits.

Why not straight from the triggers: a statement that fires a trigger opens a statement savepoint, and FTS5 (3.40)
flushes its pending terms to a new on-disk segment at every savepoint. Written row by row from the triggers, the
two FTS5 indexes therefore got one segment per memory written (and the merges of all those segments), not one
per batch: about 14 of the ~32 pages a one-event batch wrote, and 60 % of the cost of inserting a memory at
8 events per batch. The triggers now queue each change (with the old values a delete needs) in this table, and
:func:`drain` feeds the whole queue to each index in one statement, in the order the changes were made.

Every write to ``memories`` must be followed, in its transaction, by :func:`drain`: the read model's
``apply_batch`` does so before it commits (the only writer of the table), and a test or tool that writes the
table by hand must too. Until then the FTS indexes do not show the change.
"""

from __future__ import annotations

import sqlite3
from typing import Literal

__all__ = ["QUEUE_DDL", "drain", "queued"]

#: ``target``: which index a change is for: ``both``, ``main`` (memories_fts) or ``title`` (memories_title_fts).
#: ``command``: NULL to add the row's text, ``'delete'`` to remove it (FTS5's delete command for external content).
QUEUE_DDL = """
CREATE TABLE IF NOT EXISTS text_index_queue (
    seq     INTEGER PRIMARY KEY,
    command TEXT,
    rid     INTEGER NOT NULL,
    title   TEXT,
    content TEXT,
    tags    TEXT,
    target  TEXT NOT NULL
);
"""

Target = Literal["both", "main", "title"]


def queued(command: Literal["add", "delete"], row: Literal["new", "old"], target: Target) -> str:
    """The trigger statement that queues one change of ``row`` (``new`` or ``old``) for ``target``."""
    verb = "NULL" if command == "add" else "'delete'"
    return (f"INSERT INTO text_index_queue (command, rid, title, content, tags, target) "
            f"VALUES ({verb}, {row}.rowid, {row}.title, {row}.content, {row}.tags, '{target}');")


def drain(db: sqlite3.Connection) -> None:
    """Apply the queued changes to both FTS5 indexes, in order, and empty the queue (in the caller's transaction).
    Each index takes them in one statement, so its pending terms reach the disk as one segment."""
    if db.execute("SELECT 1 FROM text_index_queue LIMIT 1").fetchone() is None:
        return
    db.execute("INSERT INTO memories_fts (memories_fts, rowid, title, content, tags) "
               "SELECT command, rid, title, content, tags FROM text_index_queue WHERE target != 'title' ORDER BY seq")
    db.execute("INSERT INTO memories_title_fts (memories_title_fts, rowid, title) "
               "SELECT command, rid, title FROM text_index_queue WHERE target != 'main' ORDER BY seq")
    db.execute("DELETE FROM text_index_queue")
