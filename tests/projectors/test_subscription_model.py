"""The subscription tables on both read models: one recorded log of subscription events (including a duplicate
subscription id, a delete of an unknown id and a repeated dead letter) applied in small batches and twice, then
the same rows, the same refusals and the same owner-scoped answers on SQLite and on a real Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.log import LogRecord
from projectors import MemoryReadModel, SQLiteReadModel, Verdict
from projectors.postgres import PostgresReadModel
from schemas import encode_payload
from schemas.events import (
    EventPayload,
    Subscription,
    SubscriptionCreated,
    SubscriptionDeadLettered,
    SubscriptionDeleted,
)
from tests.factories import node_key, signed


def _sub(sub_id: str, owner: str, at: str) -> SubscriptionCreated:
    return SubscriptionCreated(Subscription(id=sub_id, url=f"https://hooks.example.com/{sub_id}", events="*",
                                            created_by=owner, created_at=at, namespace_filter="ops",
                                            sealed_keys={"node": "c2VhbGVk"}, secret_fingerprint="0123456789abcdef"))


def _dead(sub_id: str, owner: str, correlation: str) -> SubscriptionDeadLettered:
    return SubscriptionDeadLettered(subscription_id=sub_id, owner=owner, correlation_id=correlation,
                                    event_type="memory_store", source_event_id="e1", body='{"event":"memory_store"}',
                                    attempts=4, last_error="http-500", first_failed_at="2026-05-01T00:00:01+00:00",
                                    last_failed_at="2026-05-01T00:00:07+00:00")


EVENTS: list[EventPayload] = [
    _sub("s1", "alice", "2026-05-01T00:00:00+00:00"),
    _sub("s2", "alice", "2026-05-01T00:00:02+00:00"),
    _sub("s3", "bob", "2026-05-01T00:00:03+00:00"),
    _sub("s1", "mallory", "2026-05-01T00:00:04+00:00"),  # the same id again: refused
    _dead("s1", "alice", "c1"),
    _dead("s1", "alice", "c1"),  # the same dead letter again: refused
    _dead("s3", "bob", "c2"),
    SubscriptionDeleted(id="s1", deleted_at="2026-05-01T00:00:09+00:00"),
    SubscriptionDeleted(id="nope", deleted_at="2026-05-01T00:00:09+00:00"),  # unknown: refused
]


@pytest.fixture
def records(tmp_path: Path) -> list[LogRecord]:
    key = node_key(tmp_path)
    return [LogRecord("p", i, signed(key, event_type=e.TYPE, payload=encode_payload(e)))
            for i, e in enumerate(EVENTS, start=1)]


def _load(model: MemoryReadModel, records: list[LogRecord]) -> None:
    for _ in range(2):  # re-delivery changes nothing
        for start in range(0, len(records), 3):
            model.apply_batch([Verdict(r) for r in records[start:start + 3]])


@pytest.fixture
def both(tmp_path: Path, postgres_url: str, records: list[LogRecord]) -> Iterator[list[MemoryReadModel]]:
    models: list[MemoryReadModel] = [SQLiteReadModel(tmp_path / "rm.db"), PostgresReadModel(postgres_url)]
    for model in models:
        _load(model, records)
    yield models
    for model in models:
        model.close()


def test_subscriptions_and_dead_letters_on_both_read_models(both: list[MemoryReadModel]) -> None:
    lite, pg = both
    for model in both:
        alice = model.subscriptions.owned(created_by="alice")
        assert [s.id for s in alice] == ["s2"]  # s1 was deleted
        assert model.subscriptions.get("s1") is None
        bob = model.subscriptions.get("s3")
        assert bob is not None and bob.failure_count == 1 and bob.last_failed_at == "2026-05-01T00:00:07+00:00"
        (kept,) = model.subscriptions.dead_letters(owner="alice")  # outlives the subscription
        assert kept.correlation_id == "c1" and kept.retry_count == 4 and kept.offset == 5
        assert model.subscriptions.dead_letters(owner="alice", subscription_id="s3") == []
        assert [d.correlation_id for d in model.subscriptions.dead_letters(owner="bob", limit=1)] == ["c2"]
        reasons = sorted(str(r["reason"]) for r in model.rejected_events())
        assert reasons == ["delivery c1 is already dead-lettered", "no subscription nope",
                           "subscription s1 already exists"]
    assert lite.subscriptions.owned(created_by=None) == pg.subscriptions.owned(created_by=None)
    assert lite.subscriptions.dead_letters(owner="alice") == pg.subscriptions.dead_letters(owner="alice")
    assert lite.rejected_events() == pg.rejected_events()
