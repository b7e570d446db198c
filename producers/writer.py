"""The one way events reach the log: envelope → sign → append (retrying while the log is unavailable) →
hand the records to the local projectors → wait until they are applied → (optionally) wait for a quorum.

Every domain service (memories, links, governance, …) holds the node's one :class:`EventWriter`, so all of
them share one write lock, one signing key and the same read-your-writes and quorum guarantees.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from infra.log import AppendConflictError, Clock, EventLog, LogError, LogPosition, LogRecord, LogUnavailableError
from producers.attestation import current_attestation
from producers.chain import ChainSigner, newest_own_event
from producers.errors import ConflictError
from producers.quorum import QuorumTracker
from projectors import ProjectionRunner, VerifiedEvents
from schemas import SCHEMA_VERSION, Envelope, NodeKey, SignedEvent, encode_payload, now_ts
from schemas.events import EventPayload

__all__ = ["DecideFn", "Decided", "EventWriter", "WriteResult", "backoff"]

log = logging.getLogger("ai_memory.writer")

#: One event to append and the namespace its envelope carries.
Decided = tuple[EventPayload, str]
#: A decision made under the write lock against the caught-up read model.
DecideFn = Callable[[], Awaitable[Sequence[Decided]]]


@dataclass(frozen=True)
class WriteResult:
    positions: list[LogPosition]
    #: How many nodes had applied the write when it returned (set on quorum writes only).
    quorum_acks: int | None = None

    @property
    def offset(self) -> int | None:
        return self.positions[-1].offset if self.positions else None

    def clock(self) -> Clock:
        out: Clock = {}
        for pos in self.positions:
            out[pos.partition] = max(out.get(pos.partition, 0), pos.offset)
        return out


class EventWriter:
    """Signs and appends events for this node, and waits until its own read models have applied them.

    ``runners`` are the local projection runners a write must reach before it returns (the SQLite/Postgres
    model, the vector index); ``lock`` is held by a command across its decide-and-append, so two commands on
    this node never decide against the same state.
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

    def envelope(self, event: EventPayload, *, namespace: str, actor: str) -> Envelope:
        # The agent's own signature over the request that caused this event rides beside the node's, when the
        # request was signed by the agent the event is written for (see producers.attestation).
        att = current_attestation()
        return Envelope(event_id=str(uuid.uuid4()), type=event.TYPE, schema_version=SCHEMA_VERSION,
                        namespace=namespace, actor=actor, origin=self.node_id, ts=now_ts(),
                        payload=encode_payload(event), key_id=self._key.key_id,
                        attestation=att.to_dict() if att is not None and att.agent_id == actor else None)

    async def append(self, events: Sequence[Decided], *, actor: str, expected: Clock | None = None) -> WriteResult:
        """Sign and append ``events`` atomically; return once the local read models hold them.

        ``expected`` (the log end the decision was made against) makes the append optimistic on logs that
        support it: :class:`~infra.log.AppendConflictError` if another writer appended first.
        """
        await self._chain_started()
        signed = self.chain.sign([self.envelope(e, namespace=ns, actor=actor) for e, ns in events])
        if self._verified is not None:
            for event in signed:  # signed here, so they verify: the projectors need not check again
                self._verified.add(event)
        try:
            positions = await self._append_retrying(signed, expected if self.log.SUPPORTS_EXPECTED else None)
        except BaseException:
            self.chain.unconfirmed(signed)  # not (or not surely) stored: the next event declares their seqs void
            raise
        result = WriteResult(positions)
        records = [LogRecord(p.partition, p.offset, event) for p, event in zip(positions, signed, strict=True)]
        for runner in self.runners:
            runner.offer(records)
        await self.wait(result.clock(), timeout=self.write_timeout)
        return result

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

    async def _append_retrying(self, signed: Sequence[SignedEvent], expected: Clock | None) -> list[LogPosition]:
        """Append, retrying while the log is unavailable (no leader yet, a leader change, a reconnect) for at
        most ``write_timeout``. Safe to repeat: the events keep their ids, and the log stores an id once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.write_timeout
        delay = 0.05
        while True:
            try:
                return await self.log.append(signed, expected=expected)
            except LogUnavailableError:
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
        """Wait until the local read models hold everything in the log, and return the log's end."""
        end = await self.log.end_offsets()
        await self.wait(end, timeout=self.write_timeout)
        return end

    async def with_quorum(self, write: WriteResult) -> WriteResult:
        """With quorum writes on, return once W nodes have applied ``write`` (raises QuorumNotMetError)."""
        if self.quorum is None or not write.positions:
            return write
        return replace(write, quorum_acks=await self.quorum.wait(write.clock()))

    async def decide_and_append(self, decide: DecideFn, *, actor: str, attempts: int = 10) -> WriteResult:
        """Optimistic concurrency for commands whose decision reads state other nodes may change: under the
        lock, catch up, ``decide`` the events against the read model, append them expecting the log end seen.
        Another writer got in first → back off and decide again. An empty decision appends nothing."""
        for attempt in range(attempts):
            if attempt:
                await backoff(attempt)
            async with self.lock:
                end = await self.caught_up()
                events = await decide()
                if not events:
                    return WriteResult([])
                try:
                    return await self.append(events, actor=actor, expected=end)
                except AppendConflictError:
                    continue
        raise ConflictError("the log kept moving under this write; please retry")



async def backoff(attempt: int) -> None:
    """Wait before retrying a write that lost an optimistic append: random, so writers on several nodes that
    collided do not collide again in step, and growing, so the retries span a burst (2.5 ms, 5 ms, … 320 ms)."""
    await asyncio.sleep(random.uniform(0, 0.0025 * 2 ** min(attempt - 1, 7)))
