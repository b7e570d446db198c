"""Hash chains over each writer's events, and the audit that finds where a log breaks them. Pure, no I/O.

Every event a node's writer signs carries a ``chain`` block inside the signed body: the writer's *epoch* (a
random id chosen when the writer starts: a node restart, or a second process on the same node, starts a new
one), the event's ``seq`` in that epoch (1, 2, 3, …) and ``prev``, the SHA-256 of the body of the epoch's
previous event (None for seq 1). Nobody without the node's key can change a block, so a record deleted from
the log leaves a missing seq, a record moved leaves a seq out of order, a second event under one seq shows as
a duplicate, and an event that names another predecessor than the one stored shows as a wrong link.

Events whose append a writer could not confirm at the first try (refused, timed out, retried) are declared by
the writer's next event in ``void`` (inclusive seq ranges): such a seq missing, or stored out of its place (a
retry that landed after later events), is the writer's own statement, not a break. A second copy of an event (a
retry past a dedup window) is counted, not a break. What a chain cannot show: a deleted *tail* (the last
events of an epoch) or a whole epoch deleted, since nothing later names them; an external checkpoint of each
epoch's last seq and hash (:meth:`ChainAudit.tips`) does.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from schemas.errors import EncodingError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from schemas.envelope import SignedEvent

__all__ = ["ChainAudit", "ChainBreak", "ChainLink", "chain_schema", "event_hash", "seq_ranges"]

#: A gap this long is reported as one range at once instead of being remembered seq by seq.
MAX_TRACKED_GAP = 100_000
#: How many recent events' hashes the audit keeps, to tell a second copy of one from another event.
RECENT_HASHES = 20_000


def event_hash(body: bytes) -> str:
    """What ``prev`` names: the SHA-256 of an event's signed body, hex."""
    return hashlib.sha256(body).hexdigest()


def seq_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted seqs as inclusive ranges of consecutive ones: 1, 2, 3, 7 → (1, 3), (7, 7)."""
    out: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if out and out[-1][1] == seq - 1:
            out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out


@dataclass(frozen=True, slots=True)
class ChainLink:
    """An envelope's ``chain`` block."""

    epoch: str
    seq: int
    prev: str | None
    #: Seq ranges (inclusive) of this epoch that the writer signed but the log did not confirm storing.
    void: tuple[tuple[int, int], ...] = ()
    #: On seq 1 only: the (epoch, seq) of the same origin's newest event the writer found when it started; then
    #: ``prev`` is that event's hash, and the new epoch continues the old one's chain.
    follows: tuple[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"epoch": self.epoch, "seq": self.seq, "prev": self.prev}
        if self.void:  # absent when empty, like every optional field: the bytes stay minimal
            out["void"] = [list(r) for r in self.void]
        if self.follows is not None:
            out["follows"] = {"epoch": self.follows[0], "seq": self.follows[1]}
        return out

    @classmethod
    def from_dict(cls, data: Any) -> ChainLink:
        """Raises EncodingError for anything but a well-formed block."""
        if not isinstance(data, dict) or not {"epoch", "seq", "prev"} <= set(data) <= _BLOCK_KEYS:
            raise EncodingError("envelope chain must be an object with epoch, seq, prev (and void, follows)")
        epoch, seq, prev, void = data["epoch"], data["seq"], data["prev"], data.get("void", [])
        if not isinstance(epoch, str) or not epoch:
            raise EncodingError("envelope chain epoch is not a non-empty string")
        if not _is_int(seq) or seq < 1:
            raise EncodingError("envelope chain seq is not a positive integer")
        if not (prev is None or isinstance(prev, str)):
            raise EncodingError("envelope chain prev is not a string or null")
        if not isinstance(void, list) or not all(
            isinstance(r, list) and len(r) == 2 and all(_is_int(s) for s in r) and 1 <= r[0] <= r[1] < seq for r in void
        ):
            raise EncodingError("envelope chain void is not a list of [first, last] seqs before this one")
        follows = data.get("follows")
        if follows is not None and not (
            seq == 1
            and isinstance(prev, str)
            and isinstance(follows, dict)
            and set(follows) == {"epoch", "seq"}
            and isinstance(follows["epoch"], str)
            and follows["epoch"]
            and _is_int(follows["seq"])
            and follows["seq"] >= 1
        ):
            raise EncodingError("envelope chain follows is not {epoch, seq} on a seq 1 that names its prev")
        return cls(epoch, seq, prev, tuple((r[0], r[1]) for r in void), _follows(follows))


_BLOCK_KEYS = frozenset({"epoch", "seq", "prev", "void", "follows"})


def _follows(block: dict[str, Any] | None) -> tuple[str, int] | None:
    return None if block is None else (block["epoch"], block["seq"])


def _checked_link(block: dict[str, Any]) -> ChainLink:
    """The link of an envelope's block, which ``Envelope.from_dict`` (or the signer) already checked: a replay
    reads millions, so it is not checked twice."""
    void = block.get("void")
    return ChainLink(
        block["epoch"],
        block["seq"],
        block["prev"],
        tuple((r[0], r[1]) for r in void) if void else (),
        _follows(block.get("follows")),
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def chain_schema() -> dict[str, Any]:
    """The JSON Schema of the envelope's optional ``chain`` block."""
    seq = {"type": "integer", "minimum": 1}
    return {
        "type": "object",
        "description": "the writer's hash chain: epoch, seq in it, SHA-256 (hex) of the epoch's previous event "
        "body; void: seq ranges not confirmed stored (missing or late); follows (seq 1 only): the same origin's event "
        "this epoch continues, whose hash is prev",
        "properties": {
            "epoch": {"type": "string", "minLength": 1},
            "seq": seq,
            "prev": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "void": {"type": "array", "items": {"type": "array", "items": seq, "minItems": 2, "maxItems": 2}},
            "follows": {
                "type": "object",
                "properties": {"epoch": {"type": "string", "minLength": 1}, "seq": seq},
                "required": ["epoch", "seq"],
                "additionalProperties": False,
            },
        },
        "required": ["epoch", "seq", "prev"],
        "additionalProperties": False,
    }


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """One place where the log does not hold an epoch's chain as its writer signed it."""

    #: ``missing`` (seqs no record holds), ``wrong_prev``, ``duplicate`` (a seq stored twice, different
    #: events), ``reordered`` (a seq after a later one in the same partition), ``truncated`` (a checkpointed
    #: seq gone, or its event changed), ``wrong_key`` (signed by another trusted key than the epoch's: one node
    #: writing into another's chain).
    kind: str
    origin: str
    epoch: str
    seq: int
    detail: str
    partition: str | None = None
    offset: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "origin": self.origin,
            "epoch": self.epoch,
            "seq": self.seq,
            "detail": self.detail,
            "partition": self.partition,
            "offset": self.offset,
        }

    def __str__(self) -> str:
        where = f" at {self.partition}@{self.offset}" if self.partition is not None else ""
        return f"chain {self.origin}/{self.epoch} seq {self.seq}: {self.kind}{where}: {self.detail}"


@dataclass(slots=True)
class _Epoch:
    origin: str
    key_id: str
    top: int = 0
    #: Seqs at or below this came before a resumed reader's start: not its to judge.
    floor: int = 0
    tip: str = ""
    missing: set[int] = field(default_factory=set)
    #: Hashes of seqs whose successor has not been seen yet (to check its ``prev`` when it comes).
    unmatched: dict[int, str] = field(default_factory=dict)
    #: For seqs not seen yet: the hash their successor named as ``prev``.
    awaited: dict[int, str] = field(default_factory=dict)
    void: list[tuple[int, int]] = field(default_factory=list)
    last_in: dict[str, int] = field(default_factory=dict)
    #: Seqs found after a later one in their partition: breaks unless the writer declares them void.
    reorders: list[ChainBreak] = field(default_factory=list)

    def excused(self, seq: int) -> bool:
        return any(a <= seq <= b for a, b in self.void)

    def settled(self) -> bool:
        """Nothing outstanding: no gap and no reorder its writer has not declared."""
        return all(self.excused(s) for s in self.missing) and all(self.excused(b.seq) for b in self.reorders)


class ChainAudit:
    """Feed it every signature-verified record in log order (:meth:`add`); it finds the breaks.

    ``from_start``: the records start at the beginning of the log, so an epoch must start at seq 1; a runner
    that resumes in the middle passes False and takes each epoch's first seq it sees as given. Memory is per
    epoch (plus any seqs outstanding), not per event; ``max_epochs`` bounds it for a reader that runs for months
    (every CLI verb that writes is an epoch): beyond it the longest-idle settled epoch is forgotten, and from then
    on an epoch not known is taken as resumed, like ``from_start=False`` (a cut head is then ``verify``'s to find).
    """

    def __init__(
        self,
        *,
        from_start: bool = True,
        checkpoint: Mapping[str, Mapping[str, Any]] | None = None,
        max_epochs: int | None = None,
    ) -> None:
        self._from_start = from_start
        self._max_epochs = max_epochs
        self._epochs: OrderedDict[tuple[str, str], _Epoch] = OrderedDict()
        self._breaks: list[ChainBreak] = []
        self._recent: OrderedDict[tuple[str, str, int], str] = OrderedDict()
        self._checkpoint = {k: (int(v["seq"]), str(v["hash"])) for k, v in (checkpoint or {}).items()}
        self._checked: set[str] = set()
        #: Epoch starts that follow an event not seen yet: (origin, epoch, seq) → (the break if it never comes,
        #: the hash it must have).
        self._following: dict[tuple[str, str, int], tuple[ChainBreak, str]] = {}
        self.chained = 0
        self.unchained = 0
        self.copies = 0

    def add(self, partition: str, offset: int, event: SignedEvent) -> list[ChainBreak]:
        """Audit one record; return the breaks it shows for sure now (gaps and reorders may still be excused by a
        later ``void``: see :attr:`breaks` and :meth:`finish`)."""
        envelope = event.envelope
        if envelope.chain is None:
            self.unchained += 1  # written before chains existed, or by a producer that does not chain
            return []
        self.chained += 1
        link = _checked_link(envelope.chain)
        state = self._epoch(envelope.origin, envelope.key_id, link)
        found = _Found(self, state, link, partition, offset, event_id=envelope.event_id)
        digest = event_hash(event.body)
        if envelope.key_id != state.key_id:
            found.report("wrong_key", f"signed by {envelope.key_id!r}, the epoch by {state.key_id!r}")
        found.check(digest)
        if self._checkpoint:
            self._check_checkpoint(envelope.origin, link, digest, found)
        if self._following:
            self._settle_follower((envelope.origin, link.epoch, link.seq), digest)
        self._breaks.extend(found.breaks)
        self._remember((envelope.origin, link.epoch, link.seq), digest)
        return found.breaks

    def follow(self, found: _Found, target: tuple[str, int], prev: str) -> None:
        """An epoch's first event says it continues ``target`` (epoch, seq) of its origin, whose hash is ``prev``."""
        origin, (epoch, seq) = found.state.origin, target
        state = self._epochs.get((origin, epoch))
        if state is None and not self._from_start:
            return  # a resumed reader does not know what came before it
        if state is not None and (seq <= state.floor or (seq <= state.top and seq not in state.missing)):
            known = self.recent_hash(origin, epoch, seq) or (state.tip if seq == state.top else None)
            if seq > state.floor and known is not None and known != prev:
                found.report("wrong_prev", f"follows {epoch} seq {seq}, which is another event")
            return
        gone = ChainBreak(
            "missing",
            origin,
            found.link.epoch,
            1,
            f"the event it follows ({epoch} seq {seq}) is not in the log",
            found.partition,
            found.offset,
        )
        self._following[origin, epoch, seq] = (gone, prev)

    def _settle_follower(self, key: tuple[str, str, int], digest: str) -> None:
        waiting = self._following.pop(key, None)
        if waiting is not None and waiting[1] != digest:
            self._breaks.append(
                replace(waiting[0], kind="wrong_prev", detail=f"follows {key[1]} seq {key[2]}, which is another event")
            )

    def _epoch(self, origin: str, key_id: str, link: ChainLink) -> _Epoch:
        state = self._epochs.get((origin, link.epoch))
        if state is not None:
            self._epochs.move_to_end((origin, link.epoch))
            return state
        state = self._epochs[origin, link.epoch] = _Epoch(origin, key_id)
        if not self._from_start:
            state.top = state.floor = link.seq - 1  # the resumed reader's baseline
        if self._max_epochs is not None and len(self._epochs) > self._max_epochs:
            self._forget_one()
        return state

    def _forget_one(self) -> None:
        for key, old in self._epochs.items():
            if old.settled():
                del self._epochs[key]
                self._from_start = False
                return

    def _remember(self, key: tuple[str, str, int], digest: str) -> None:
        self._recent.setdefault(key, digest)
        if len(self._recent) > RECENT_HASHES:
            self._recent.popitem(last=False)

    def recent_hash(self, origin: str, epoch: str, seq: int) -> str | None:
        return self._recent.get((origin, epoch, seq))

    def _reorders(self) -> list[ChainBreak]:
        return [b for state in self._epochs.values() for b in state.reorders if not state.excused(b.seq)]

    def _check_checkpoint(self, origin: str, link: ChainLink, digest: str, found: _Found) -> None:
        key = f"{origin}/{link.epoch}"
        want = self._checkpoint.get(key)
        if want is not None and want[0] == link.seq:
            self._checked.add(key)
            if want[1] != digest:
                found.report("truncated", "the checkpointed event at this seq was replaced")

    def gaps(self) -> list[ChainBreak]:
        """Seqs no record has held so far and no writer declared void, as ``missing`` ranges."""
        out = []
        for (origin, epoch), state in self._epochs.items():
            for first, last in seq_ranges(s for s in state.missing if not state.excused(s)):
                span = f"seq {first}" if first == last else f"seqs {first}..{last}"
                out.append(ChainBreak("missing", origin, epoch, first, f"{span} not in the log"))
        for (origin, epoch, seq), (gone, _) in self._following.items():
            target = self._epochs.get((origin, epoch))
            if target is None or not target.excused(seq):
                out.append(gone)
        return out

    def finish(self) -> list[ChainBreak]:
        """Every break: those found on the way, the gaps still open, and checkpointed tips the log lacks."""
        lost = []
        for key, (seq, _digest) in sorted(self._checkpoint.items()):
            origin, _, epoch = key.rpartition("/")
            state = self._epochs.get((origin, epoch))
            if key not in self._checked and (state is None or seq > state.top or seq in state.missing):
                lost.append(ChainBreak("truncated", origin, epoch, seq, "the checkpoint's last event is gone"))
        return [*self.breaks, *self.gaps(), *lost]

    @property
    def breaks(self) -> list[ChainBreak]:
        """The breaks found so far, gaps not included."""
        return [*self._breaks, *self._reorders()]

    def tips(self) -> dict[str, dict[str, Any]]:
        """Each epoch's highest seq and its hash, keyed ``origin/epoch``: a checkpoint to keep outside the log."""
        return {
            f"{origin}/{epoch}": {"seq": s.top, "hash": s.tip}
            for (origin, epoch), s in sorted(self._epochs.items())
            if s.tip
        }

    def status(self, *, limit: int = 10) -> dict[str, Any]:
        """For status pages: the counts, and the first ``limit`` breaks (gaps open now included)."""
        found = [*self.breaks, *self.gaps()]
        return {**self.summary(), "breaks": len(found), "first_breaks": [str(b) for b in found[:limit]]}

    def summary(self) -> dict[str, int]:
        return {
            "epochs": len(self._epochs),
            "origins": len({o for o, _ in self._epochs}),
            "chained": self.chained,
            "unchained": self.unchained,
            "copies": self.copies,
        }


class _Found:
    """The checks of one record against its epoch's state (and the state's update)."""

    def __init__(
        self, audit: ChainAudit, state: _Epoch, link: ChainLink, partition: str, offset: int, *, event_id: str
    ) -> None:
        self.audit, self.state, self.link = audit, state, link
        self.partition, self.offset, self.event_id = partition, offset, event_id
        self.breaks: list[ChainBreak] = []

    def report(self, kind: str, detail: str) -> None:
        found = ChainBreak(kind, self.state.origin, self.link.epoch, self.link.seq, detail, self.partition, self.offset)
        (self.state.reorders if kind == "reordered" else self.breaks).append(found)

    def check(self, digest: str) -> None:
        state, seq = self.state, self.link.seq
        state.void.extend(self.link.void)
        if seq <= state.floor:
            return  # before the baseline (on another partition, it may come after it)
        if seq <= state.top and seq not in state.missing:
            if digest in (
                self.audit.recent_hash(state.origin, self.link.epoch, seq),
                state.tip if seq == state.top else None,
            ):
                self.audit.copies += 1  # the same event stored twice (a retry past a dedup window): harmless
            else:
                self.report("duplicate", f"seq {seq} is already in the log; event {self.event_id} is another")
            return
        last = state.last_in.get(self.partition, 0)
        if seq < last:
            self.report("reordered", f"after seq {last} in the same partition")
        state.last_in[self.partition] = max(last, seq)
        self._link_back()
        self._link_forward(digest)
        if seq > state.top:
            gap = seq - state.top - 1
            if gap > MAX_TRACKED_GAP:
                self.report("missing", f"seqs {state.top + 1}..{seq - 1} not in the log")
            else:
                state.missing.update(range(state.top + 1, seq))
            state.top, state.tip = seq, digest
        else:
            state.missing.discard(seq)

    def _link_back(self) -> None:
        """This event's ``prev`` against its predecessor, now or (if not seen yet) when it comes."""
        state, seq, prev = self.state, self.link.seq, self.link.prev
        if seq == 1:
            if self.link.follows is not None and prev is not None:
                self.audit.follow(self, self.link.follows, prev)
            elif prev is not None:
                self.report("wrong_prev", "the first event of an epoch names a predecessor")
            return
        if seq - 1 in state.unmatched:
            if state.unmatched.pop(seq - 1) != prev:
                self.report("wrong_prev", f"prev is not the hash of seq {seq - 1} in the log")
        elif seq - 1 > state.top or seq - 1 in state.missing:
            state.awaited[seq - 1] = prev or ""

    def _link_forward(self, digest: str) -> None:
        """The successor seen before this event named a ``prev``: it must be this event."""
        state, seq = self.state, self.link.seq
        if seq in state.awaited:
            if state.awaited.pop(seq) != digest:
                self.report("wrong_prev", f"seq {seq + 1} names another predecessor than this event")
        else:
            state.unmatched[seq] = digest
