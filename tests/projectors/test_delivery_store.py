"""The webhook delivery store applies a batch that changes nothing without a transaction, and loses nothing by it.

A batch of events another node wrote, or of this node's events while no subscription exists, moves only the
position: it stays in memory until a batch that writes, a second later, or the store's close. A crash before
that replays those events after the restart; the deliveries must come out as if it had not crashed.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from infra.log import Clock, LogRecord
from projectors import DeliveryStore, Verdict
from projectors import deliveries as deliveries_module
from schemas import Memory, NodeKey, encode_payload, now_ts
from schemas.events import MemoryStored, Subscription, SubscriptionCreated, SubscriptionDeleted
from tests.factories import node_key, signed

PART = "p"


def _stored(key: NodeKey, offset: int) -> LogRecord:
    now = now_ts()
    memory = Memory(id=str(uuid.uuid4()), tier="long", namespace="global", title=f"fact {offset}", content="text",
                    tags=[], priority=5, confidence=1.0, source="api", access_count=0, created_at=now,
                    updated_at=now, metadata={"agent_id": "alice"})
    return LogRecord(PART, offset, signed(key, event_type=MemoryStored.TYPE,
                                          payload=encode_payload(MemoryStored(memory))))


def _subscribed(key: NodeKey, offset: int, sub_id: str) -> LogRecord:
    sub = Subscription(id=sub_id, url="https://example.org/hook", events="*", created_by="alice",
                       created_at=now_ts(), sealed_keys={key.key_id: "c2VhbGVk"}, secret_fingerprint="0" * 16)
    return LogRecord(PART, offset, signed(key, event_type=SubscriptionCreated.TYPE,
                                          payload=encode_payload(SubscriptionCreated(sub))))


def _unsubscribed(key: NodeKey, offset: int, sub_id: str) -> LogRecord:
    return LogRecord(PART, offset, signed(key, event_type=SubscriptionDeleted.TYPE,
                                          payload=encode_payload(SubscriptionDeleted(sub_id, now_ts()))))


def _stored_position(path: Path) -> Clock:
    """The position as written in the file, read by another connection (what a restart starts from)."""
    db = sqlite3.connect(path)
    try:
        return {str(p): int(o) for p, o in db.execute('SELECT partition, "offset" FROM tracking')}
    finally:
        db.close()


def _open(path: Path, key: NodeKey) -> DeliveryStore:
    store = DeliveryStore(path, node_id=key.key_id)
    store.set_horizon({})
    return store


def _apply(store: DeliveryStore, records: list[LogRecord], size: int) -> None:
    for i in range(0, len(records), size):
        store.apply_batch([Verdict(r) for r in records[i:i + size]])


def _delivered(store: DeliveryStore) -> list[tuple[str, str, int]]:
    return sorted((d.correlation_id, d.status, d.offset) for d in store.deliveries())


def test_a_batch_that_changes_nothing_leaves_the_file_alone_until_close(tmp_path: Path) -> None:
    me, other = node_key(tmp_path, "me"), node_key(tmp_path, "other")
    path = tmp_path / "deliveries.db"
    store = _open(path, me)
    result = store.apply_batch([Verdict(_stored(other, 1)), Verdict(_stored(me, 2))])
    assert (result.applied, result.skipped, result.rejected) == (2, 0, 0)
    assert store.position() == {PART: 2}
    assert _stored_position(path) == {}  # nothing to deliver: no transaction
    assert store.apply_batch([Verdict(_stored(me, 2))]).skipped == 1  # at or below the position: skipped
    store.close()
    assert _stored_position(path) == {PART: 2}


def test_an_unsaved_position_is_saved_a_second_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    me = node_key(tmp_path, "me")
    path = tmp_path / "deliveries.db"
    store = _open(path, me)
    monkeypatch.setattr(deliveries_module, "SAVE_POSITION_EVERY", 0.0)
    store.apply_batch([Verdict(_stored(me, 1))])
    assert _stored_position(path) == {}  # the first unsaved batch starts the clock
    store.apply_batch([Verdict(_stored(me, 2))])
    assert _stored_position(path) == {PART: 2}
    store.close()


def test_a_subscription_change_is_written_with_its_position_at_once(tmp_path: Path) -> None:
    me = node_key(tmp_path, "me")
    path = tmp_path / "deliveries.db"
    store = _open(path, me)
    _apply(store, [_stored(me, 1), _subscribed(me, 2, "s1"), _stored(me, 3)], 1)
    assert _stored_position(path) == {PART: 3}  # offset 3 is delivered: written with its delivery
    assert [(status, offset) for _, status, offset in _delivered(store)] == [("pending", 3)]
    _apply(store, [_unsubscribed(me, 4, "s1"), _stored(me, 5)], 2)
    assert _stored_position(path) == {PART: 5}  # one batch: written with the deletion
    _apply(store, [_stored(me, 6)], 1)
    assert _stored_position(path) == {PART: 5}  # no subscription left: nothing to write
    assert [(status, offset) for _, status, offset in _delivered(store)] == [("cancelled", 3)]
    store.close()


@pytest.mark.parametrize(("size", "crash_after"), [(1, 8), (3, 3), (1, 3)])
def test_a_crash_before_the_position_is_saved_replays_to_the_same_deliveries(tmp_path: Path, size: int,
                                                                             crash_after: int) -> None:
    me, other = node_key(tmp_path, "me"), node_key(tmp_path, "other")
    records = [_stored(me, 1), _stored(other, 2), _stored(me, 3), _subscribed(me, 4, "s1"), _stored(other, 5),
               _stored(me, 6), _unsubscribed(me, 7, "s1"), _stored(me, 8), _subscribed(me, 9, "s2"), _stored(me, 10),
               _stored(other, 11), _stored(me, 12)]
    calm = _open(tmp_path / "calm.db", me)
    _apply(calm, records, size)
    crashed_path = tmp_path / "crashed.db"
    crashing = _open(crashed_path, me)
    _apply(crashing, records[:crash_after], size)
    crashing._db.close()  # a crash: the store is never closed, its unsaved position is lost
    restarted = _open(crashed_path, me)
    assert restarted.position() == _stored_position(crashed_path)
    # The last batch before the crash changed nothing: its position was not saved, its events are applied again.
    assert restarted.position().get(PART, 0) < crash_after
    _apply(restarted, [r for r in records if r.offset > restarted.position().get(PART, 0)], size)
    assert _delivered(restarted) == _delivered(calm)
    assert sorted((status, offset) for _, status, offset in _delivered(calm)) == [
        ("cancelled", 6), ("pending", 10), ("pending", 12)]
    assert restarted.position() == calm.position() == {PART: 12}
    restarted.close()
    calm.close()
