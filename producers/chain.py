"""Signing a writer's events into its hash chain (the ``chain`` block of :mod:`schemas.chain`).

A :class:`ChainSigner` is one epoch: it starts at seq 1 when the writer starts (a restart, or a second process
on the same node, is a new epoch, so two processes sharing a node key never fork one chain) and numbers every
event it signs, in signing order, under a small lock: local work only, no log round trip, so appends may
pipeline. An event signed but not stored at the first try (the append failed, or its outcome is unknown, or a
retry may store it after events signed later) would look like a deletion or a reorder; :meth:`ChainSigner.unconfirmed`
records its seq, and the next event signed declares it in ``void``, inside its signature.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

from schemas import ChainLink, Envelope, NodeKey, SignedEvent, event_hash, sign
from schemas.chain import seq_ranges

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ChainSigner"]


class ChainSigner:
    """Signs envelopes with ``key``, chaining them in one epoch."""

    def __init__(self, key: NodeKey, *, epoch: str | None = None) -> None:
        self._key = key
        self.epoch = epoch or uuid.uuid4().hex
        self._seq = 0
        self._prev: str | None = None
        self._void: set[int] = set()
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
        link = ChainLink(self.epoch, self._seq + 1, self._prev, void)
        event = sign(replace(envelope, chain=link.to_dict()), self._key)
        self._seq, self._prev = link.seq, event_hash(event.body)
        return event

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
