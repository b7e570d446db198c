"""The SQLite read model: applies verified events and their offsets in one transaction, and answers queries.

Safe to share between processes on one data directory: each batch runs under ``BEGIN IMMEDIATE`` and
re-reads the tracked position inside the transaction, so two projectors never apply an event twice.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from infra.log import Clock
from infra.sqlite_checkpoint import BackgroundCheckpointer
from projectors.base import ApplyResult, Verdict
from projectors.errors import ReadModelBusyError, ReadModelError
from projectors.rules import Inapplicable
from projectors.sql import Sql
from projectors.sql_model import FirstSight, SqlReadModel
from projectors.sqlite.archive import SQLiteArchiveQueries
from projectors.sqlite.domains import APPLIERS, MEMORY_APPLIERS
from projectors.sqlite.governance import SQLiteGovernanceQueries
from projectors.sqlite.graph import SQLiteGraphQueries
from projectors.sqlite.identity import SQLiteIdentityQueries
from projectors.sqlite.queries import SQLiteMemoryQueries
from projectors.sqlite.schema import BUSY_TIMEOUT_MS, connect, drop_index_triggers, restore_index_triggers
from projectors.sqlite.sql import SQLiteSql
from projectors.sqlite.text_queue import drain
from projectors.subscription_queries import SQLiteSubscriptionQueries

__all__ = ["SQLiteReadModel"]


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise ReadModelError(f"sqlite read model: {exc}") from exc


class SQLiteReadModel(SqlReadModel[sqlite3.Connection]):
    appliers = APPLIERS
    memory_appliers = MEMORY_APPLIERS
    refused = (Inapplicable, sqlite3.IntegrityError)

    def __init__(self, path: Path | str, *, bulk: bool = False) -> None:
        """``bulk=True`` is for replaying a whole log into an empty model: the FTS and rank indexes are built
        once by :meth:`finish_bulk` instead of row by row (over twice as fast); queries are not valid before."""
        self.path = path
        with _mapped_errors():
            self._db = connect(path)
            if bulk:
                drop_index_triggers(self._db)
        self._bulk = bulk
        self._checkpointer: BackgroundCheckpointer | None = None
        if not bulk and str(path) != ":memory:":
            BackgroundCheckpointer.relieve(self._db)
            self._checkpointer = BackgroundCheckpointer(path)
            self._checkpointer.start()
        self.queries = SQLiteMemoryQueries(self._db, build_now=not bulk)
        self.subscriptions = SQLiteSubscriptionQueries(self._db)
        self.archive = SQLiteArchiveQueries(self._db)
        self.governance = SQLiteGovernanceQueries(self._db)
        self.graph = SQLiteGraphQueries(self._db)
        self.identity = SQLiteIdentityQueries(self._db)

    @property
    def location(self) -> str:
        return str(self.path)

    def finish_bulk(self) -> None:
        if self._bulk:
            # Not one transaction (executescript commits): fine, a bulk model is a scratch file until it is whole.
            with _mapped_errors():
                restore_index_triggers(self._db)
            self._bulk = False

    @staticmethod
    def sql(db: sqlite3.Connection) -> SQLiteSql:
        return SQLiteSql(db)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Sql]:
        with _mapped_errors():
            yield SQLiteSql(self._db)

    # Autocommit outside a batch: a statement is its own transaction.
    _writing = _reading

    def apply_batch(self, verdicts: Sequence[Verdict]) -> ApplyResult:
        with _mapped_errors():
            self._begin_writing()
            try:
                result = self._batch(self._db, verdicts)
                drain(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return result

    def _begin_writing(self) -> None:
        """Take the write lock. On a shared file another node of the host may hold it, applying, most likely the
        same records: this node is told so at once (:class:`ReadModelBusyError`) rather than blocking its event
        loop until that commit, only to find the records applied."""
        if not self.shared:
            self._db.execute("BEGIN IMMEDIATE")
            return
        self._db.execute("PRAGMA busy_timeout = 0")
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            raise ReadModelBusyError(f"sqlite read model {self.path}: another node is applying") from None
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def _first_sights(self, db: sqlite3.Connection, verdicts: Sequence[Verdict], position: Clock) -> FirstSight:
        # One statement per record; no savepoint per event either: every applier checks before it writes, and a
        # statement that still fails (a constraint) is undone by SQLite on its own, so a refused event leaves no
        # trace.
        return lambda record: db.execute("INSERT OR IGNORE INTO applied_events (event_id) VALUES (?)",
                                         (record.event.event_id,)).rowcount == 1

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.queries.close()
        self._db.close()
