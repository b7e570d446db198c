"""The one way events reach the log: decide → envelope → sign → append → hand the records to the local
projectors → wait until they are applied → read the outcome the projector recorded → (optionally) wait for a
quorum.

The log is the sequencer. Every command follows one template, :meth:`EventWriter.decide_and_append`: catch up
with the log, decide against this node's read model (local work, under a lock that covers no network round
trip), then append unconditionally; appends from one node pipeline. Where the decision could be invalidated by
a concurrent write elsewhere (a title taken meanwhile, a quota used up, a memory or link gone, a pending action
decided), the event says what to do, and the projectors decide it again, deterministically, in log order:
every node and every replay reaches the same outcome. The writer waits for its own events (read-your-writes)
and answers from that outcome: :attr:`WriteResult.refusals`. The conflict domain of a command is thus the state
its decision reads, never the whole log, and no command appends conditionally or retries a lost race.

A decision that carries out other events (an approval and the approved action) is a :class:`Guarded` group:
its events name the decision as their ``cause``, and the projectors apply them only when the decision itself
was applied, so the approval that loses a race runs nothing.

Every domain service holds the node's one :class:`EventWriter`: one signing step (:meth:`EventWriter.seal`),
the same read-your-writes and quorum guarantees. Its appends pipeline (:mod:`producers.write.pipeline`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial

from infra.log import Clock, EventLog, LogError, LogPosition, LogRecord, LogUnavailableError
from producers.identity.attestation import current_attestation
from producers.write.background import BackgroundAppends
from producers.write.chain import ChainSigner, newest_own_event
from producers.write.pipeline import AppendPipeline
from producers.write.quorum import QuorumTracker
from projectors import ProjectionRunner, VerifiedEvents
from projectors.merge_order import causal_ts
from schemas import SCHEMA_VERSION, Envelope, NodeKey, SignedEvent, encode_payload, now_ts
from schemas.events import EventPayload

__all__ = ["DecideFn", "Decided", "EventWriter", "Guarded", "Planned", "WriteResult"]

log = logging.getLogger("ai_memory.writer")

#: One event to append and the namespace its envelope carries.
Decided = tuple[EventPayload, str]


@dataclass(frozen=True)
class Guarded:
    """A decision and the events that carry it out (an approval, then the approved action): appended in this
    order, each of ``effects`` naming ``decision`` as its envelope's ``cause``, so the projectors apply them only
    if the decision was applied first, in log order (a second approval of one pending action runs nothing)."""

    decision: Decided
    effects: Sequence[Decided] = ()


#: What a command appends: plain events, and guarded groups.
Planned = Decided | Guarded
#: A decision made against this node's read model.
DecideFn = Callable[[], Awaitable[Sequence[Planned]]]


@dataclass(frozen=True)
class WriteResult:
    positions: list[LogPosition]
    #: How many nodes had applied the write when it returned (set on quorum writes only).
    quorum_acks: int | None = None
    #: Per appended event, why the local read model refused it when it reached it in log order (None: applied).
    refusals: tuple[str | None, ...] = ()

    @property
    def offset(self) -> int | None:
        return self.positions[-1].offset if self.positions else None

    def refusal(self, index: int = 0) -> str | None:
        """Why the ``index``-th event of this write was refused in log order; None when it was applied."""
        return self.refusals[index] if index < len(self.refusals) else None

    def clock(self) -> Clock:
        out: Clock = {}
        for pos in self.positions:
            out[pos.partition] = max(out.get(pos.partition, 0), pos.offset)
        return out


class EventWriter:
    """Signs and appends events for this node, waits until its own read models have applied them, and reads
    back what the first of them (the memory model) made of them.

    ``runners`` are the local projection runners a write must reach before it returns (the SQLite/Postgres
    model first, then the vector index). ``lock`` serialises the local part of decisions (reading the model,
    choosing the events) so two commands on this node never decide against the same state; it is never held
    across a round trip to the log.
    """

    def __init__(self, log: EventLog, key: NodeKey, *, node_id: str, runners: Sequence[ProjectionRunner],
                 write_timeout: float = 10.0, verified: VerifiedEvents | None = None,
                 quorum: QuorumTracker | None = None) -> None:
        self.log = log
        self._key = key
        self.node_id = node_id
        self.runners = list(runners)
        self.write_timeout = write_timeout
        self._verified = verified
        self.quorum = quorum
        self.lock = asyncio.Lock()
        self.chain = ChainSigner(key)  # this writer's epoch of the node's hash chain (schemas.chain)
        self._chain_start: asyncio.Future[None] | None = None
        self._pipeline = AppendPipeline(self._append_batch, self.seal, self._offer)
        self._end_next: asyncio.Future[Clock] | None = None  # the next read of the log's end, shared
        self._end_reading: asyncio.Task[None] | None = None
        self._last_ts: str | None = None
        #: Appends no command waits for (a recall's touch); settled before every catch-up and at close.
        self.background = BackgroundAppends()

    def envelope(self, event: EventPayload, *, namespace: str, actor: str, cause: str | None = None) -> Envelope:
        # The agent's own signature over the request that caused this event rides beside the node's, when the
        # request was signed by the agent the event is written for (see producers.identity.attestation).
        att = current_attestation()
        return Envelope(event_id=str(uuid.uuid4()), type=event.TYPE, schema_version=SCHEMA_VERSION,
                        namespace=namespace, actor=actor, origin=self.node_id, ts=self._stamp(),
                        payload=encode_payload(event), key_id=self._key.key_id,
                        attestation=att.to_dict() if att is not None and att.agent_id == actor else None,
                        cause=cause)

    def envelopes(self, planned: Sequence[Planned], *, actor: str) -> list[Envelope]:
        """The envelopes of ``planned``, in order; the effects of a :class:`Guarded` name its decision."""
        out: list[Envelope] = []
        for item in planned:
            if isinstance(item, Guarded):
                head = self.envelope(item.decision[0], namespace=item.decision[1], actor=actor)
                out.append(head)
                out.extend(self.envelope(e, namespace=ns, actor=actor, cause=head.event_id) for e, ns in item.effects)
            else:
                out.append(self.envelope(item[0], namespace=item[1], actor=actor))
        return out

    def _stamp(self) -> str:
        """This node's clock, moved past the newest event its read models applied (and its own last stamp): with
        several regions, a write is ordered after every write its node had seen (projectors.merge_order)."""
        seen = [s for s in (self._last_ts, *(r.newest_ts for r in self.runners)) if s is not None]
        self._last_ts = causal_ts(now_ts(), max(seen) if seen else None)
        return self._last_ts

    def seal(self, envelopes: Sequence[Envelope]) -> list[SignedEvent]:
        """The one signing step: every event any command appends is signed here, and nowhere else, into this
        writer's hash chain (:class:`~producers.write.chain.ChainSigner`), in the order its node appends them: the
        pipeline calls this for each batch just before appending it."""
        signed = self.chain.sign(envelopes)
        if self._verified is not None:
            for event in signed:  # signed here, so they verify: the projectors need not check again
                self._verified.add(event)
        return signed

    async def append(self, events: Sequence[Planned], *, actor: str) -> WriteResult:
        """Append ``events`` (a :class:`Guarded` group flattened in place) unconditionally and atomically; return
        once the local read models hold them, with the outcome the memory model recorded for each
        (:attr:`WriteResult.refusals`, one per appended event). Envelopes are made here, in the caller's context
        (its attestation); concurrent appends of this node go to the log together
        (:class:`~producers.write.pipeline.AppendPipeline`)."""
        await self._chain_started()
        if self.quorum is not None:  # before the append, so the peers confirm its commit as they make it
            self.quorum.ask()
        records = await self._pipeline.submit(self.envelopes(events, actor=actor))
        result = WriteResult([r.position for r in records])
        await self.wait(result.clock(), timeout=self.write_timeout)
        if not self.runners:
            return result
        model = self.runners[0]
        return replace(result, refusals=tuple(model.refusal(r.partition, r.offset) for r in records))

    def append_later(self, events: Sequence[Planned], *, actor: str) -> None:
        """:meth:`append` in the background, for events the caller's answer does not depend on
        (:mod:`producers.write.background`): started now, in order, settled by :meth:`caught_up`."""
        self.background.start(partial(self.append, events, actor=actor))

    async def _append_batch(self, signed: Sequence[SignedEvent]) -> list[LogPosition]:
        try:
            return await self._append_retrying(signed)
        except BaseException:
            self.chain.unconfirmed(signed)  # not (or not surely) stored: the next event declares their seqs void
            raise

    def _offer(self, records: list[LogRecord]) -> None:
        # The memory projector hands them on to the runners it leads (ProjectionRunner.lead): a runner offered
        # them again here finds them applied, and one it does not lead takes them now.
        for runner in self.runners:
            runner.offer(records)

    async def _chain_started(self) -> None:
        """Once, before the first event: let the new epoch follow the node's newest event in the log."""
        if self._chain_start is None:
            self._chain_start = asyncio.ensure_future(self._follow_newest())
        await asyncio.shield(self._chain_start)

    async def _follow_newest(self) -> None:
        try:
            newest = await newest_own_event(self.log, self._key, self.node_id)
        except LogError as exc:  # only a weaker link is lost: the epoch starts on its own
            log.warning("new chain epoch starts unlinked: %s", exc)
            return
        if newest is not None:
            self.chain.follow(newest)

    async def _append_retrying(self, signed: Sequence[SignedEvent]) -> list[LogPosition]:
        """Append, retrying while the log is unavailable (no leader yet, a leader change, a reconnect) for at
        most ``write_timeout``. Safe to repeat: the events keep their ids, and the log stores an id once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.write_timeout
        delay = 0.05
        new = True  # sealed just now: no log holds them until the first try, which may store them and still fail
        while True:
            try:
                return await self.log.append(signed, new=new)
            except LogUnavailableError:
                new = False
                # A retry may land after events signed later (or never): the next event says so in its chain.
                self.chain.unconfirmed(signed)
                if loop.time() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)

    async def wait(self, clock: Clock, *, timeout: float) -> None:
        """Until every local read model has applied ``clock``."""
        for runner in self.runners:
            await runner.wait(clock, timeout=timeout)

    async def caught_up(self) -> Clock:
        """Wait until the local read models hold everything in the log, and return the log's end: everything
        acknowledged anywhere before this call, so a decision made after it sees those writes (and the
        background appends started before it, :meth:`append_later`)."""
        await self.background.settle()
        end = await self._log_end()
        await self.wait(end, timeout=self.write_timeout)
        return end

    async def _log_end(self) -> Clock:
        """The log's end, read after this call began. Concurrent callers share reads (one in flight, and the
        next, which starts when it returns, for everyone who came meanwhile), so a node with many writers
        reads the end about once per round trip, not once per write."""
        shared = self._end_next
        if shared is None:
            shared = self._end_next = asyncio.get_running_loop().create_future()
            shared.add_done_callback(lambda f: f.cancelled() or f.exception())
            if self._end_reading is None:
                self._read_end()
        return await asyncio.shield(shared)

    def _read_end(self) -> None:
        self._end_reading = asyncio.create_task(self._end_into(), name="log-end")

    async def _end_into(self) -> None:
        # Callers who came before this line share this read; from here on, newcomers wait for the next one.
        done, self._end_next = self._end_next, None
        assert done is not None
        try:
            end = await self.log.end_offsets()
        except BaseException as exc:  # every waiter learns it; a cancelled read (closing) is not a hang
            done.set_exception(exc if isinstance(exc, Exception) else LogUnavailableError("the log's end was not read"))
            if not isinstance(exc, Exception):
                raise
        else:
            done.set_result(end)
        finally:
            self._end_reading = None
            if self._end_next is not None:  # callers that came while this read was in flight
                self._read_end()

    async def with_quorum(self, write: WriteResult) -> WriteResult:
        """With quorum writes on, return once W nodes have applied ``write`` (raises QuorumNotMetError)."""
        if self.quorum is None or not write.positions:
            return write
        return replace(write, quorum_acks=await self.quorum.wait(write.clock()))

    async def decide_and_append(self, decide: DecideFn, *, actor: str, fresh: bool = True) -> WriteResult:
        """The template of every command: catch up (``fresh``: one read of the log's end, no lock held; a
        command whose decision reads nothing another node writes may skip it), ``decide`` the events against
        the local read model under the lock (local work only), append them unconditionally, and answer from
        the outcome the projectors recorded for each in log order (:meth:`WriteResult.refusal`): a concurrent
        write elsewhere shows up there, never as a retry. An empty decision appends nothing."""
        if fresh:
            await self.caught_up()
        async with self.lock:
            events = await decide()
        if not events:
            return WriteResult([])
        return await self.append(events, actor=actor)
