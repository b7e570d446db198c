"""Each writer's hash chain: what a writer signs (producers.write.chain) and what the audit finds (schemas.chain)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from producers.write.chain import ChainSigner
from schemas import (
    SCHEMA_VERSION,
    ChainAudit,
    ChainLink,
    EncodingError,
    Envelope,
    NodeKey,
    SignedEvent,
    event_hash,
    new_event_id,
    now_ts,
    sign,
)
from tests.factories import node_key


@pytest.fixture
def key(tmp_path: Path) -> NodeKey:
    return node_key(tmp_path)


def _envelope(key: NodeKey, origin: str) -> Envelope:
    return Envelope(
        event_id=new_event_id(),
        type="memory.deleted",
        schema_version=SCHEMA_VERSION,
        namespace="global",
        actor="tester",
        origin=origin,
        ts=now_ts(),
        payload={"id": new_event_id()},
        key_id=key.key_id,
    )


def chained(signer: ChainSigner, key: NodeKey, n: int, *, origin: str = "node-a") -> list[SignedEvent]:
    return signer.sign([_envelope(key, origin) for _ in range(n)])


def audit(events: Sequence[SignedEvent | tuple[str, SignedEvent]], **options: object) -> ChainAudit:
    """Audit ``events`` in this order, at offsets 1, 2, … (one partition unless a pair names another)."""
    chain = ChainAudit(**options)  # type: ignore[arg-type]
    for offset, item in enumerate(events, start=1):
        partition, event = item if isinstance(item, tuple) else ("p0", item)
        chain.add(partition, offset, event)
    return chain


def kinds(chain: ChainAudit) -> list[tuple[str, int]]:
    return [(b.kind, b.seq) for b in chain.finish()]


class TestSigner:
    def test_events_carry_epoch_seq_and_the_previous_body_hash(self, key: NodeKey) -> None:
        signer = ChainSigner(key)
        events = chained(signer, key, 3)
        links = [ChainLink.from_dict(e.envelope.chain) for e in events]
        assert [link.seq for link in links] == [1, 2, 3] and {link.epoch for link in links} == {signer.epoch}
        assert [link.prev for link in links] == [None, event_hash(events[0].body), event_hash(events[1].body)]

    def test_a_second_signer_is_a_new_epoch(self, key: NodeKey) -> None:
        first, second = ChainSigner(key), ChainSigner(key)
        assert first.epoch != second.epoch
        assert ChainLink.from_dict(chained(second, key, 1)[0].envelope.chain).seq == 1

    def test_abandoned_seqs_are_declared_void_by_the_next_event(self, key: NodeKey) -> None:
        signer = ChainSigner(key)
        chained(signer, key, 1)
        lost = chained(signer, key, 2)
        signer.unconfirmed(lost)
        (declares,) = chained(signer, key, 1)
        assert ChainLink.from_dict(declares.envelope.chain).void == ((2, 3),)
        signer.unconfirmed([declares])  # lost too: its declaration must not be lost with it
        (again,) = chained(signer, key, 1)
        assert ChainLink.from_dict(again.envelope.chain).void == ((2, 4),)


class TestFollows:
    def test_a_new_epoch_follows_the_newest_event_of_the_last_one(self, key: NodeKey) -> None:
        before = chained(ChainSigner(key), key, 3)
        signer = ChainSigner(key)
        signer.follow(before[-1])
        first, second = chained(signer, key, 2)
        link = ChainLink.from_dict(first.envelope.chain)
        old = ChainLink.from_dict(before[-1].envelope.chain)
        assert link.seq == 1 and link.follows == (old.epoch, 3) and link.prev == event_hash(before[-1].body)
        assert ChainLink.from_dict(second.envelope.chain).follows is None
        signer.follow(before[0])  # too late: the epoch has started
        assert ChainLink.from_dict(chained(signer, key, 1)[0].envelope.chain).prev == event_hash(second.body)

    def _two_runs(self, key: NodeKey) -> tuple[list[SignedEvent], list[SignedEvent]]:
        first = chained(ChainSigner(key), key, 3)
        signer = ChainSigner(key)
        signer.follow(first[-1])
        return first, chained(signer, key, 2)

    def test_the_last_event_of_a_run_cut_from_the_log_shows_once_the_next_run_wrote(self, key: NodeKey) -> None:
        first, second = self._two_runs(key)
        assert audit([*first, *second]).finish() == []
        assert kinds(audit([*first[:2], *second])) == [("missing", 1)]
        assert kinds(audit(first[:2])) == []  # before the next run, nothing names it: a checkpoint's job

    def test_a_follower_may_come_first_and_must_name_the_right_event(self, key: NodeKey) -> None:
        first, second = self._two_runs(key)
        assert audit([("p1", second[0]), ("p0", first[0]), ("p0", first[1]), ("p0", first[2])]).finish() == []
        forked = chained(ChainSigner(key, epoch=ChainLink.from_dict(first[0].envelope.chain).epoch), key, 3)
        assert ("wrong_prev", 1) in kinds(audit([*forked, *second]))
        assert ("wrong_prev", 1) in kinds(audit([("p1", second[0]), *forked]))

    def test_a_resumed_reader_does_not_judge_what_came_before_it(self, key: NodeKey) -> None:
        _, second = self._two_runs(key)
        assert audit(second, from_start=False).finish() == []


class TestEnvelope:
    def test_an_event_without_a_chain_keeps_its_exact_bytes(self, key: NodeKey) -> None:
        old = sign(_envelope(key, "node-a"), key)
        assert b'"chain"' not in old.body
        assert SignedEvent.from_parts(old.body, old.signature).envelope.chain is None

    @pytest.mark.parametrize(
        "block",
        [
            "x",
            {"epoch": "e", "seq": 0, "prev": None},
            {"epoch": "", "seq": 1, "prev": None},
            {"epoch": "e", "seq": True, "prev": None},
            {"epoch": "e", "seq": 2, "prev": 5},
            {"epoch": "e", "seq": 2},
            {"epoch": "e", "seq": 2, "prev": None, "extra": 1},
            {"epoch": "e", "seq": 3, "prev": "h", "void": [[3, 3]]},
            {"epoch": "e", "seq": 3, "prev": "h", "void": [2]},
            {"epoch": "e", "seq": 2, "prev": "h", "follows": {"epoch": "d", "seq": 4}},
            {"epoch": "e", "seq": 1, "prev": None, "follows": {"epoch": "d", "seq": 4}},
            {"epoch": "e", "seq": 1, "prev": "h", "follows": {"epoch": "d", "seq": 0}},
        ],
    )
    def test_a_malformed_chain_block_is_not_an_envelope(self, key: NodeKey, block: object) -> None:
        body = _envelope(key, "node-a").to_dict() | {"chain": block}
        with pytest.raises(EncodingError, match="chain"):
            Envelope.from_dict(body)


class TestAudit:
    def test_an_intact_chain_has_no_breaks(self, key: NodeKey) -> None:
        chain = audit(chained(ChainSigner(key), key, 5))
        assert chain.finish() == []
        assert chain.summary() == {"epochs": 1, "origins": 1, "chained": 5, "unchained": 0, "copies": 0}

    def test_a_deleted_record_is_a_missing_seq(self, key: NodeKey) -> None:
        events = chained(ChainSigner(key), key, 5)
        assert kinds(audit(events[:2] + events[3:])) == [("missing", 3)]
        assert kinds(audit(events[1:])) == [("missing", 1)]

    def test_a_moved_record_is_a_reorder(self, key: NodeKey) -> None:
        events = chained(ChainSigner(key), key, 4)
        assert kinds(audit([events[0], events[2], events[1], events[3]])) == [("reordered", 2)]

    def test_a_second_copy_of_an_event_is_harmless_another_event_under_its_seq_is_not(self, key: NodeKey) -> None:
        events = chained(ChainSigner(key), key, 3)
        copied = audit([*events, events[2], events[0]])  # copies a retry past a dedup window could leave
        assert copied.finish() == [] and copied.copies == 2
        forked = chained(ChainSigner(key, epoch=ChainLink.from_dict(events[0].envelope.chain).epoch), key, 2)
        assert kinds(audit([*events, forked[1]])) == [("duplicate", 2)]

    def test_an_event_naming_another_predecessor_is_a_wrong_link(self, key: NodeKey) -> None:
        one, other = ChainSigner(key, epoch="e1"), ChainSigner(key, epoch="e1")  # a forked writer
        mine, theirs = chained(one, key, 2), chained(other, key, 2)
        assert kinds(audit([mine[0], theirs[1]])) == [("wrong_prev", 2)]
        # The successor may come first (another partition): the link is checked when the predecessor comes.
        assert kinds(audit([("p1", theirs[1]), ("p0", mine[0])])) == [("wrong_prev", 1)]

    def test_seqs_the_writer_declared_void_are_no_break(self, key: NodeKey) -> None:
        signer = ChainSigner(key)
        kept = chained(signer, key, 1)
        lost = chained(signer, key, 2)
        signer.unconfirmed(lost)
        after = chained(signer, key, 2)
        assert audit(kept + after).finish() == []
        undeclared = ChainSigner(key)
        events = chained(undeclared, key, 4)
        assert kinds(audit([events[0], events[3]])) == [("missing", 2)]

    def test_a_retried_append_that_lands_after_later_events_is_declared_not_a_break(self, key: NodeKey) -> None:
        signer = ChainSigner(key)
        first, second = chained(signer, key, 1), chained(signer, key, 1)
        assert kinds(audit([*second, *first])) == [("reordered", 1)]
        signer.unconfirmed(first)  # its first append failed; the retry stored it after ``second``
        declares = chained(signer, key, 1)
        assert audit([*second, *first, *declares]).finish() == []

    def test_another_nodes_key_cannot_write_into_an_epoch(self, key: NodeKey, tmp_path: Path) -> None:
        events = chained(ChainSigner(key), key, 3)
        other = node_key(tmp_path, "other-node")
        epoch = ChainLink.from_dict(events[0].envelope.chain).epoch
        intruder = ChainSigner(other, epoch=epoch)
        intruder.sign([_envelope(other, "node-a")])  # seq 1, so that its next is seq 2, chained on it
        (forged,) = intruder.sign([_envelope(other, "node-a")])
        assert ("wrong_key", 2) in kinds(audit([events[0], forged, events[2]]))

    def test_partitions_interleave_freely(self, key: NodeKey) -> None:
        events = chained(ChainSigner(key), key, 4)
        order = [("p1", events[1]), ("p0", events[0]), ("p1", events[3]), ("p2", events[2])]
        assert audit(order).finish() == []

    def test_origins_and_epochs_are_audited_apart(self, key: NodeKey) -> None:
        a, b, a2 = ChainSigner(key), ChainSigner(key), ChainSigner(key)
        ea, eb, ea2 = (chained(a, key, 3), chained(b, key, 3, origin="node-b"), chained(a2, key, 2))
        mixed = [ea[0], eb[0], ea[1], ea2[0], eb[1], eb[2], ea2[1], ea[2]]
        chain = audit(mixed)
        assert chain.finish() == [] and chain.summary()["epochs"] == 3 and chain.summary()["origins"] == 2
        assert kinds(audit([e for e in mixed if e is not eb[1]])) == [("missing", 2)]

    def test_a_reader_resuming_mid_log_takes_the_first_seq_as_given(self, key: NodeKey) -> None:
        events = chained(ChainSigner(key), key, 5)
        assert audit(events[2:], from_start=False).finish() == []
        assert kinds(audit(events[2:3] + events[4:], from_start=False)) == [("missing", 4)]
        # Another partition may still bring seqs from before the first one this reader saw.
        assert audit([("p1", events[3]), ("p0", events[2]), ("p1", events[4])], from_start=False).finish() == []

    def test_a_long_running_reader_forgets_settled_epochs_beyond_its_bound(self, key: NodeKey) -> None:
        writers = [chained(ChainSigner(key), key, 2) for _ in range(5)]
        chain = audit([e for events in writers for e in events], max_epochs=3)
        assert chain.finish() == [] and chain.summary()["epochs"] == 3
        # A forgotten epoch coming back is taken as resumed, not as one whose head was cut.
        late = chain.add("p0", 99, writers[0][1])
        assert late == [] and chain.finish() == []

    def test_unchained_events_are_counted_not_broken(self, key: NodeKey) -> None:
        chain = audit([sign(_envelope(key, "node-a"), key) for _ in range(2)])
        assert chain.finish() == [] and chain.unchained == 2

    def test_a_checkpoint_shows_a_cut_tail(self, key: NodeKey) -> None:
        events = chained(ChainSigner(key), key, 5)
        tips = audit(events).tips()
        assert audit(events, checkpoint=tips).finish() == []
        assert audit([*events, *chained(ChainSigner(key), key, 1)], checkpoint=tips).finish() == []
        assert kinds(audit(events[:3], checkpoint=tips)) == [("truncated", 5)]
        assert kinds(audit([], checkpoint=tips)) == [("truncated", 5)]

    def test_a_tampered_checkpointed_event_shows(self, key: NodeKey) -> None:
        events = chained(ChainSigner(key), key, 2)
        tips = audit(events).tips()
        key_ = next(iter(tips))
        forged = {key_: tips[key_] | {"hash": "0" * 64}}
        assert ("truncated", 2) in kinds(audit(events, checkpoint=forged))

    def test_the_chain_block_is_signed(self, key: NodeKey) -> None:
        """Changing the block changes the body, so the signature no longer covers it."""
        (event,) = chained(ChainSigner(key), key, 1)
        assert event.envelope.chain is not None
        moved = replace(event.envelope, chain=event.envelope.chain | {"seq": 2})
        assert moved.body() != event.body
