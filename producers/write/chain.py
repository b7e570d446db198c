"""Signing a writer's events into its hash chain (the ``chain`` block of :mod:`schemas.chain`).

A :class:`ChainSigner` is one epoch: it starts at seq 1 when the writer starts (a restart, or a second process
on the same node, is a new epoch, so two processes sharing a node key never fork one chain) and numbers every
event it signs, in signing order, under a small lock: local work only, no log round trip, so appends may
pipeline. An event signed but not stored at the first try (the append failed, or its outcome is unknown, or a
retry may store it after events signed later) would look like a deletion or a reorder; :meth:`ChainSigner.unconfirmed`
records its seq, and the next event signed declares it in ``void``, inside its signature.

A new epoch continues the node's chain where it can: before its first event, the writer looks for the node's
newest event among the last records of the log (:func:`newest_own_event`), and its seq 1 ``follows`` it (with
that event's hash as ``prev``), so cutting the last events of a node's previous run shows once it runs again.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

from schemas import ChainLink, Envelope, Keyring, NodeKey, SchemaError, SignedEvent, event_hash, sign, verify
from schemas.chain import seq_ranges

if TYPE_CHECKING:
    from collections.abc import Sequence

    from infra.log import EventLog

__all__ = ["ChainSigner", "newest_own_event"]

#: How many records from the end of each partition a new epoch looks through for the node's newest event.
LOOK_BACK = 256


class ChainSigner:
    """Signs envelopes with ``key``, chaining them in one epoch."""

    def __init__(self, key: NodeKey, *, epoch: str | None = None) -> None:
        self._key = key
        self.epoch = epoch or uuid.uuid4().hex
        self._seq = 0
        self._prev: str | None = None
        self._void: set[int] = set()
        self._follows: tuple[str, int] | None = None
        self._lock = threading.Lock()

    @property
    def seq(self) -> int:
        """The seq of the last event signed (0 before the first)."""
        return self._seq

    def sign(self, envelopes: Sequence[Envelope]) -> list[SignedEvent]:
        """Sign ``envelopes`` as the next events of the chain, in order."""
        with self._lock:
            return [self._sign_next(envelope) for envelope in envelopes]

    def _sign_next(self, envelope: Envelope) -> SignedEvent:
        void, self._void = tuple(seq_ranges(self._void)), set()
        link = ChainLink(self.epoch, self._seq + 1, self._prev, void, self._follows if self._seq == 0 else None)
        event = sign(replace(envelope, chain=link.to_dict()), self._key)
        self._seq, self._prev = link.seq, event_hash(event.body)
        return event

    def follow(self, event: SignedEvent) -> None:
        """Start the epoch after ``event`` (the node's newest, from an earlier epoch), if nothing is signed yet."""
        if event.envelope.chain is None:
            return
        link = ChainLink.from_dict(event.envelope.chain)
        with self._lock:
            if self._seq == 0:
                self._follows, self._prev = (link.epoch, link.seq), event_hash(event.body)

    def unconfirmed(self, events: Sequence[SignedEvent]) -> None:
        """``events`` (signed here) may be missing from the log or stored out of place: the next event signed
        declares their seqs void, and again any void their own blocks declared, which may be lost with them."""
        with self._lock:
            for event in events:
                if event.envelope.chain is None:
                    continue
                link = ChainLink.from_dict(event.envelope.chain)
                if link.epoch == self.epoch:
                    self._void.add(link.seq)
                    self._void.update(s for first, last in link.void for s in range(first, last + 1))


async def newest_own_event(
    log: EventLog, key: NodeKey, origin: str, *, look_back: int = LOOK_BACK
) -> SignedEvent | None:
    """The newest chained event of ``origin`` signed by ``key`` among the last ``look_back`` records of each
    partition; None when there is none (a new node, or one that has not written for a long while)."""
    end = await log.end_offsets()
    records = await log.read(
        after={p: max(0, off - look_back) for p, off in end.items()}, limit=look_back * max(1, len(end))
    )
    mine = Keyring({key.key_id: key.public_bytes})
    newest: SignedEvent | None = None
    for record in records:
        envelope = record.event.envelope
        if record.unreadable is not None or envelope.origin != origin or envelope.chain is None:
            continue
        try:
            verify(record.event, mine)  # a forged record must not become what the new epoch follows
        except SchemaError:
            continue
        if newest is None or (envelope.ts, envelope.chain["seq"]) >= (newest.envelope.ts, _seq(newest)):
            newest = record.event
    return newest


def _seq(event: SignedEvent) -> int:
    return int((event.envelope.chain or {})["seq"])
