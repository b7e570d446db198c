"""The webhook delivery projector's store: a local SQLite file (``<data-dir>/deliveries.db``) that follows the
log with its own position and turns events into a durable outbox of deliveries.

Applying a batch (in one transaction with the new position) keeps the subscriptions as of that point in the log
(with this node's sealed HMAC key) and adds one ``pending`` delivery per matching (event, subscription) — only for
events whose ``origin`` is this node, so in a cluster each event is delivered once, by the node that wrote it.
The sender (``producers.webhooks``) takes pending rows and marks them ``ack`` or ``dead``; a restart resumes the
pending ones and never resends an acknowledged one. Nothing here is shared: each node has its own file, and one
process (its ``serve``) applies to it, so the store keeps its position in memory too, and a batch with nothing to
deliver and no subscription change moves only that (see :meth:`DeliveryStore.apply_batch`).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.log import Clock, LogRecord
from projectors.base import ApplyResult, ReadModel, Verdict
from projectors.errors import ReadModelError
from projectors.webhook_rules import SubscriptionTarget, correlation_id, matches, webhook_events
from schemas import SchemaError, decode_payload
from schemas.events import SubscriptionCreated, SubscriptionDeleted

__all__ = ["SAVE_POSITION_EVERY", "Delivery", "DeliveryStore", "LocalSubscription"]

#: Seconds a position moved by batches that wrote nothing else may stay unsaved (see DeliveryStore.apply_batch).
SAVE_POSITION_EVERY = 1.0

_DDL = """
CREATE TABLE IF NOT EXISTS tracking (partition TEXT PRIMARY KEY, "offset" INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (
    id               TEXT PRIMARY KEY,
    url              TEXT NOT NULL,
    events           TEXT NOT NULL,
    namespace_filter TEXT,
    agent_filter     TEXT,
    created_by       TEXT NOT NULL,
    sealed_key       TEXT
);
-- status: pending → ack | dead (the sender), or cancelled (the subscription was deleted first).
CREATE TABLE IF NOT EXISTS deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    correlation_id  TEXT NOT NULL UNIQUE,
    subscription_id TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    source_event_id TEXT NOT NULL,
    partition       TEXT NOT NULL,
    "offset"        INTEGER NOT NULL,
    event_ts        TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    body            TEXT,
    finished_at     TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries (status, seq);
CREATE INDEX IF NOT EXISTS deliveries_sub ON deliveries (subscription_id, seq);
"""


@dataclass(frozen=True, slots=True)
class LocalSubscription(SubscriptionTarget):
    #: Base64 of the HMAC key sealed to this node's key, or None when it was not sealed to this node.
    sealed_key: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    seq: int
    correlation_id: str
    subscription_id: str
    event_type: str
    source_event_id: str
    partition: str
    offset: int
    event_ts: str
    payload: str
    status: str
    attempts: int
    last_error: str | None
    body: str | None
    finished_at: str | None


class DeliveryStore(ReadModel):
    """``node_id``: deliveries are made for events this node originated. ``horizon`` (set once, when the file is
    new): events at or before it are history the node had before it delivered anything, and only their
    subscription changes are applied, so a new or rebuilt store does not resend the past."""

    def __init__(self, path: Path | str, *, node_id: str) -> None:
        self.path = path
        self.node_id = node_id
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            # No fsync per commit (every batch of the log commits here, on every node): a commit lost to a power
            # cut rolls back with its tracking row, so those events are applied again and a delivery whose
            # outcome was lost is sent again, as a retry after a timeout would be (webhooks are at-least-once).
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_DDL)
        except sqlite3.Error as exc:
            raise ReadModelError(f"delivery store {path}: {exc}") from exc
        self._horizon = self._load_horizon()
        # The applied position, kept here too: a batch that changes nothing but the position (every event of
        # another node, every event when no subscription exists) moves it in memory only (see apply_batch).
        self._position = self._stored_position()
        self._unsaved_since: float | None = None
        self._subs: list[LocalSubscription] | None = None  # the subscriptions table, cached between changes

    # -- position and horizon -----------------------------------------------------------------------------

    def position(self) -> Clock:
        return dict(self._position)

    def _stored_position(self) -> Clock:
        return {r["partition"]: r["offset"] for r in self._db.execute('SELECT partition, "offset" FROM tracking')}

    def _load_horizon(self) -> Clock | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'horizon'").fetchone()
        return None if row is None else dict(json.loads(row["value"]))

    @property
    def horizon(self) -> Clock | None:
        return None if self._horizon is None else dict(self._horizon)

    def set_horizon(self, clock: Clock) -> None:
        """Record the log end at the store's first start (once; later calls change nothing)."""
        if self._horizon is None:
            self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('horizon', ?)", (json.dumps(clock),))
            self._horizon = self._load_horizon()

    # -- applying -----------------------------------------------------------------------------------------

    def apply_batch(self, verdicts: Sequence[Verdict]) -> ApplyResult:
        """Apply in one transaction with the new position; a batch that would write nothing but the position
        skips the transaction. Its position is saved with the next batch that writes, by the first batch
        :data:`SAVE_POSITION_EVERY` seconds later, or at :meth:`close`: a crash before that applies those events again
        after the restart, to the same subscriptions (any change to them is written, with its position, at
        once), so they are again no-ops."""
        position = dict(self._position)
        applying: list[LogRecord] = []
        skipped = rejected = 0
        for verdict in verdicts:
            record = verdict.record
            if record.offset <= position.get(record.partition, 0):
                skipped += 1
                continue
            position[record.partition] = record.offset
            if verdict.rejected is not None:
                rejected += 1  # never deliver an event that does not verify
            else:
                applying.append(record)
        try:
            if any(self._writes(record) for record in applying):
                self._write(applying, position)
            else:
                self._position = position
                self._save_position_in_time()
        except sqlite3.Error as exc:
            self._subs = None
            raise ReadModelError(f"delivery store: {exc}") from exc
        return ApplyResult(applied=len(applying), skipped=skipped, rejected=rejected)

    def _writes(self, record: LogRecord) -> bool:
        """Whether applying ``record`` may change the store: a subscription change, or an event of this node's
        past the horizon while a subscription exists."""
        envelope = record.event.envelope
        if envelope.type in (SubscriptionCreated.TYPE, SubscriptionDeleted.TYPE):
            return True
        return envelope.origin == self.node_id and not self._before_horizon(record) and bool(self._subscriptions())

    def _write(self, records: Sequence[LogRecord], position: Clock) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for record in records:
                self._apply(record)
            self._store_position(position)
        except BaseException:
            self._db.execute("ROLLBACK")
            self._subs = None  # the batch's subscription changes are undone
            raise
        self._db.execute("COMMIT")
        self._position = position

    def _store_position(self, position: Clock) -> None:
        self._db.executemany('INSERT INTO tracking (partition, "offset") VALUES (?, ?) ON CONFLICT '
                             '(partition) DO UPDATE SET "offset" = excluded."offset"', list(position.items()))
        self._unsaved_since = None

    def _save_position_in_time(self) -> None:
        now = time.monotonic()
        if self._unsaved_since is None:
            self._unsaved_since = now
        elif now - self._unsaved_since >= SAVE_POSITION_EVERY:
            self._store_position(self._position)

    def _apply(self, record: LogRecord) -> None:
        envelope = record.event.envelope
        if envelope.type in (SubscriptionCreated.TYPE, SubscriptionDeleted.TYPE):
            try:
                payload = decode_payload(envelope.type, envelope.payload)
            except SchemaError:
                return
            self._subs = None
            if isinstance(payload, SubscriptionCreated):
                self._subscribe(payload)
            else:
                self._db.execute("DELETE FROM subscriptions WHERE id = ?", (payload.id,))
                self._db.execute("UPDATE deliveries SET status = 'cancelled', finished_at = ? "
                                 "WHERE subscription_id = ? AND status = 'pending'", (payload.deleted_at, payload.id))
            return
        if envelope.origin != self.node_id or self._before_horizon(record):
            return
        self._enqueue(record)

    def _subscribe(self, event: SubscriptionCreated) -> None:
        s = event.subscription
        if not s.secret_fingerprint:
            return  # a keyless (namespace-shape) subscription is listed, never delivered: nothing could sign it
        self._db.execute("INSERT OR IGNORE INTO subscriptions (id, url, events, namespace_filter, agent_filter, "
                         "created_by, sealed_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (s.id, s.url, s.events, s.namespace_filter, s.agent_filter, s.created_by,
                          s.sealed_keys.get(self.node_id)))

    def _before_horizon(self, record: LogRecord) -> bool:
        return self._horizon is None or record.offset <= self._horizon.get(record.partition, 0)

    def _enqueue(self, record: LogRecord) -> None:
        events = webhook_events(record)
        if not events:
            return
        envelope = record.event.envelope
        subs = self._subscriptions()
        for event in events:
            for sub in subs:
                if not matches(sub, event):
                    continue
                cid = correlation_id(sub.id, envelope.event_id + "/" + event.event, envelope.ts)
                self._db.execute(
                    "INSERT OR IGNORE INTO deliveries (correlation_id, subscription_id, event_type, source_event_id, "
                    'partition, "offset", event_ts, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                    (cid, sub.id, event.event, envelope.event_id, record.partition, record.offset, envelope.ts,
                     json.dumps(event.payload(cid), ensure_ascii=False, sort_keys=True)))

    # -- reads and the sender's updates -------------------------------------------------------------------

    def subscriptions(self) -> list[LocalSubscription]:
        return list(self._subscriptions())

    def _subscriptions(self) -> list[LocalSubscription]:
        if self._subs is None:
            self._subs = [LocalSubscription(**dict(r)) for r in self._db.execute(
                "SELECT id, url, events, namespace_filter, agent_filter, created_by, sealed_key FROM subscriptions")]
        return self._subs

    def subscription(self, subscription_id: str) -> LocalSubscription | None:
        row = self._db.execute("SELECT id, url, events, namespace_filter, agent_filter, created_by, sealed_key "
                               "FROM subscriptions WHERE id = ?", (subscription_id,)).fetchone()
        return None if row is None else LocalSubscription(**dict(row))

    def pending(self, *, limit: int = 100, exclude: Sequence[str] = ()) -> list[Delivery]:
        rows = self._db.execute("SELECT * FROM deliveries WHERE status = 'pending' ORDER BY seq LIMIT ?",
                                (limit + len(exclude),))
        skip = set(exclude)
        return [d for d in (Delivery(**dict(r)) for r in rows) if d.correlation_id not in skip][:limit]

    def deliveries(self, *, subscription_id: str | None = None) -> list[Delivery]:
        where, params = ("", ()) if subscription_id is None else ("WHERE subscription_id = ? ", (subscription_id,))
        return [Delivery(**dict(r)) for r in self._db.execute(f"SELECT * FROM deliveries {where}ORDER BY seq",
                                                              params)]

    def finish(self, correlation: str, *, status: str, attempts: int, body: str | None, last_error: str | None,
               at: str) -> None:
        """The sender's verdict on a pending delivery: ``ack`` or ``dead``."""
        self._db.execute("UPDATE deliveries SET status = ?, attempts = ?, body = ?, last_error = ?, finished_at = ? "
                         "WHERE correlation_id = ? AND status = 'pending'",
                         (status, attempts, body, last_error, at, correlation))

    def counts(self) -> dict[str, int]:
        return {r["status"]: r["n"] for r in self._db.execute(
            "SELECT status, count(*) AS n FROM deliveries GROUP BY status")}

    def close(self) -> None:
        if self._unsaved_since is not None:
            with contextlib.suppress(sqlite3.Error):  # only a longer replay after the restart is lost
                self._store_position(self._position)
        self._db.close()
