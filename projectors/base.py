"""The projector runtime: read the log, verify each event, apply it to a read model, remember the offset.

A :class:`ReadModel` applies a batch of records and its tracking positions in ONE transaction, so a crash
loses nothing and re-delivery applies nothing twice. The :class:`ProjectionRunner` follows the log, verifies
signatures (an event that does not verify, or a record that is not an event at all, is recorded as rejected,
never applied), audits each writer's hash chain (see :mod:`schemas.chain`: breaks are logged and counted, the
events still applied, since the log is the truth) and lets writers wait for their own offset (read-your-writes).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from infra.log import Clock, EventLog, LogError, LogRecord, clock_covers, merge_clocks
from infra.tasks import stop_task
from infra.waiters import Waiters
from projectors.errors import ProjectionStoppedError, ReadModelBusyError, ReadModelError, WaitTimeoutError
from schemas import ChainAudit, Keyring, SchemaError, verify

__all__ = ["ApplyResult", "ProjectionRunner", "ReadModel", "Verdict", "unreadable_reason"]

log = logging.getLogger("ai_memory.projector")


@dataclass(frozen=True, slots=True)
class Verdict:
    """A record with the runner's judgement: ``rejected`` says why it must not be applied."""

    record: LogRecord
    rejected: str | None = None


@dataclass(frozen=True, slots=True)
class ApplyResult:
    applied: int
    skipped: int
    rejected: int
    #: The position the batch committed, where the model knows it without asking its store again (None: the
    #: runner asks :meth:`ReadModel.position`).
    position: Clock | None = None


def unreadable_reason(record: LogRecord) -> str:
    return f"unreadable record: {record.unreadable}"


class ReadModel(ABC):
    """A store the runner projects into. Implementations commit changes and positions together."""

    #: Whether other processes may apply to this store too (nodes sharing one read model). Each batch then
    #: locks the store and re-reads the position first, and a runner skips what another has applied meanwhile
    #: (:meth:`ProjectionRunner.step`) instead of verifying it again.
    shared: bool = False

    @abstractmethod
    def position(self) -> Clock:
        """The last offset applied in each partition; ``{}`` for a fresh model."""

    @abstractmethod
    def apply_batch(self, verdicts: Sequence[Verdict]) -> ApplyResult:
        """Apply the accepted records and record the rejected ones, with the new position, atomically.

        Records at or below the stored position are skipped (re-delivery is harmless).
        """

    def refusal(self, partition: str, offset: int) -> str | None:
        """Why the record at (partition, offset) was refused, or None (applied, or not yet reached): how a
        writer answers from the outcome of its own event. A model that records no refusals says None."""
        return None

    def vouched(self, records: Sequence[LogRecord]) -> set[tuple[str, int]]:
        """The (partition, offset) of those ``records`` this store has taken without refusing them: records
        whose signatures the runner that applied them checked. Only a :attr:`shared` store vouches (the other
        runners of this host need not check them again); others say nothing."""
        return set()


class ProjectionRunner:
    """Follows ``log`` into ``model``. One per read model per process."""

    #: Seconds an idle runner waits for news of an append before it reads the log anyway.
    idle_poll: float = 0.2
    #: Seconds a busy runner lets records gather before it reads again. Busy: its last read found several
    #: records, so appends are arriving faster than it applies them. Each batch costs a transaction, a commit,
    #: a wake-up of every waiter and a confirmation whatever its size; on a node that applies every other
    #: node's writes, waiting this long for bigger batches costs each event at most this much latency and saves
    #: about a tenth of the CPU per write of a three-node fleet (``bench_fleet``). A lone event (one writer,
    #: a quorum write's follower) is read at once.
    linger: float = 0.005
    #: Seconds before a runner looks again when another node of the host held a shared model's write lock.
    busy_retry: float = 0.002

    def __init__(self, log_: EventLog, model: ReadModel, keyring: Keyring, *, batch_size: int = 500,
                 on_applied: Callable[[ApplyResult], None] | None = None, consumer: str | None = None,
                 commit_every: float = 5.0, chain: ChainAudit | None = None, audit_chain: bool = True) -> None:
        """``consumer``: also record the position in the log's durable consumer positions under this name
        (at most every ``commit_every`` seconds), so log-side tools see the projector's lag (on Kafka, a
        consumer group). The read model's own tracking row stays the truth the runner resumes from.
        ``audit_chain``: follow the writers' hash chains (:attr:`chain`); one runner per process is enough,
        the others of that process see the same records."""
        self._log = log_
        self._consumer = consumer
        self._commit_every = commit_every
        self._committed: Clock = {}
        self._last_commit = 0.0
        self._commit_task: asyncio.Task[None] | None = None
        self._model = model
        self._keyring = keyring
        self._batch_size = batch_size
        self._on_applied = on_applied
        self._task: asyncio.Task[None] | None = None
        self._progress = Waiters()
        self._failure: BaseException | None = None
        self._stopping = False
        self._position: Clock = model.position()
        self._listeners: list[Callable[[Clock], None]] = []
        #: The runners of this process's other read models that take this runner's batches (:meth:`lead`).
        self._followers: list[ProjectionRunner] = []
        self._leader: ProjectionRunner | None = None
        #: The newest envelope ``ts`` applied since this runner started (None: none yet).
        self.newest_ts: str | None = None
        #: Each writer's chain as this runner has seen it: from the log's start when the model was empty.
        self.chain = chain or ChainAudit(from_start=not self._position, max_epochs=10_000)
        self._audit_chain = audit_chain

    @property
    def position(self) -> Clock:
        return dict(self._position)

    @property
    def keyring(self) -> Keyring:
        """The keys this runner trusts."""
        return self._keyring

    async def lag(self) -> int:
        """How many events the log holds beyond this runner's position (the sum over partitions)."""
        end = await self._log.end_offsets()
        return sum(max(0, offset - self._position.get(partition, 0)) for partition, offset in end.items())

    def refusal(self, partition: str, offset: int) -> str | None:
        """Why the model refused the record at (partition, offset), once applied; None if it applied it."""
        return self._model.refusal(partition, offset)

    def add_listener(self, listener: Callable[[Clock], None]) -> None:
        """Call ``listener(position)`` after every commit (e.g. to confirm it to other nodes); it must not block."""
        self._listeners.append(listener)

    def lead(self, follower: ProjectionRunner) -> Callable[[], None]:
        """Hand ``follower`` (the runner of another read model of this process) every batch this runner has
        judged, once this runner has applied it. A node's read models then read and judge each record once
        between them: the follower applies what it is handed, and reads the log itself only for what it was
        not (it started behind, or its model failed a batch), or when this runner has stopped. Returns the
        call that ends it."""
        self._followers.append(follower)
        follower._leader = self

        def stop() -> None:
            if follower in self._followers:
                self._followers.remove(follower)
            if follower._leader is self:
                follower._leader = None

        return stop

    def _hand_on(self, verdicts: Sequence[Verdict]) -> None:
        for follower in list(self._followers):
            follower.accept(verdicts)

    def accept(self, verdicts: Sequence[Verdict]) -> bool:
        """Apply verdicts another runner of this process reached (:meth:`lead`), where they continue this
        runner's position; those it holds already are skipped. A failure is this runner's own: it is logged,
        and the records are read from the log later. Whether the batch was taken."""
        try:
            return self._take([v for v in verdicts if v.record.offset > self._position.get(v.record.partition, 0)])
        except Exception as exc:  # the leader's batch stands; this model reads the records itself later
            log.warning("a projector could not take the batch it was handed (it reads it from the log): %r", exc)
            return False

    def _take(self, verdicts: Sequence[Verdict]) -> bool:
        """Apply ``verdicts`` if they directly follow the position (False, changing nothing, if not, or when
        another node of the host is applying to a shared model)."""
        if not verdicts:
            return True
        position = dict(self._position)
        for verdict in verdicts:
            record = verdict.record
            if record.offset != position.get(record.partition, 0) + 1:
                return False
            position[record.partition] = record.offset
        try:
            self._applied(verdicts)
        except ReadModelBusyError:
            return False  # another node of the host is applying to the shared model: the runner reads them
        self._progress.changed()
        return True

    def judge(self, record: LogRecord) -> Verdict:
        if record.unreadable is not None:
            return Verdict(record, rejected=unreadable_reason(record))
        try:
            verify(record.event, self._keyring)
        except SchemaError as exc:
            return Verdict(record, rejected=str(exc))
        return Verdict(record)

    def judge_all(self, records: Sequence[LogRecord]) -> list[Verdict]:
        """Judge each record; thread-safe (a catch-up verifies in a worker thread)."""
        return [self.judge(r) for r in records]

    def judge_now(self, records: Sequence[LogRecord]) -> list[Verdict]:
        """:meth:`judge_all`, on the event loop's thread, where a runner may also consult its stores."""
        return self.judge_all(records)

    async def _judge_in_thread(self, records: Sequence[LogRecord]) -> list[Verdict]:
        return await asyncio.to_thread(self.judge_all, records)

    def _applied(self, verdicts: Sequence[Verdict]) -> None:
        """Apply ``verdicts`` (raises :class:`ReadModelBusyError`, having changed nothing, when another node of
        the host is applying to a shared model), then log and audit what they held."""
        result = self._model.apply_batch(verdicts)
        for verdict in verdicts:
            record = verdict.record
            if verdict.rejected is not None:
                log.warning("refusing event %s at %s@%d: %s", record.event.event_id, record.partition,
                            record.offset, verdict.rejected)
            else:
                self._audit(record)
        self._note_stamps([v.record for v in verdicts if v.rejected is None])
        if self._on_applied is not None:
            self._on_applied(result)
        self._position = dict(result.position) if result.position is not None else self._model.position()
        for listener in self._listeners:
            listener(self.position)
        self._hand_on(verdicts)

    def _note_stamps(self, records: Sequence[LogRecord]) -> None:
        """The newest writer's clock applied here: what this node's writers stamp past (merge_order.causal_ts)."""
        if stamps := [r.event.envelope.ts for r in records]:
            self.newest_ts = max(stamps) if self.newest_ts is None else max(self.newest_ts, *stamps)

    def _audit(self, record: LogRecord) -> None:
        if self._audit_chain and record.offset > self._position.get(record.partition, 0):
            for broken in self.chain.add(record.partition, record.offset, record.event):
                log.error("the log breaks a writer's chain: %s", broken)

    def offer(self, records: Sequence[LogRecord]) -> bool:
        """Apply records this process has just appended, without reading them back from the log.

        Only records that directly follow the current position are taken (otherwise the runner reads the log
        as usual), and their signatures are not checked again: this process made them. Saves a log read and a
        verification on every write.
        """
        return bool(records) and self._take([Verdict(r) for r in records])

    async def step(self) -> int:
        """Apply the next batch, if any; return how many records it held."""
        records = await self._log.read(after=self._position, limit=self._batch_size)
        if not records:
            return 0
        fresh = self._not_applied_elsewhere(records)
        if fresh:
            try:
                self._applied(self.judge_now(fresh))
            except ReadModelBusyError:
                # Another node of the host is applying, most likely these: look again after a moment, without
                # blocking this node's event loop on the lock (its signature checks are remembered).
                await asyncio.sleep(self.busy_retry)
                return len(records)
        self._progress.changed()
        return len(records)

    def _not_applied_elsewhere(self, records: Sequence[LogRecord]) -> Sequence[LogRecord]:
        """``records`` less those another process has applied to a shared model (one read of its position); the
        runner's position moves past those without verifying them again (whoever applied them did). The chain
        audit still follows them: it checks the writers' links, not what the model holds."""
        if not self._model.shared:
            return records
        applied = self._model.position()
        done: list[LogRecord] = []
        fresh: list[LogRecord] = []
        for record in records:
            (done if record.offset <= applied.get(record.partition, 0) else fresh).append(record)
        if done:
            for record in done:
                self._audit(record)
            self._note_stamps(done)
            self._position = merge_clocks(self._position, applied)
            for listener in self._listeners:
                listener(self.position)
            if self._followers:
                self._hand_on(self._judged_elsewhere(done))
        return fresh

    def _judged_elsewhere(self, records: Sequence[LogRecord]) -> list[Verdict]:
        """Verdicts on records another node applied to the shared model, for this runner's followers (a runner
        that shares verified signatures asks the model which it took: see ``SharedVerifyRunner``)."""
        return self.judge_all(records)

    async def catch_up(self, *, progress: Callable[[int], None] | None = None,
                       judge: Callable[[Sequence[LogRecord]], Awaitable[list[Verdict]]] | None = None) -> Clock:
        """Apply everything the log holds now, then return the position.

        Pipelined for long replays: the next batch is read and its signatures verified while this batch is
        applied, so verification overlaps with applying: in a worker thread, or by ``judge`` (such as
        :class:`projectors.verifier.ProcessVerifier`). ``progress(n)`` follows each batch of n records.
        """
        judge = judge or self._judge_in_thread
        target = await self._log.end_offsets()
        records = await self._log.read(after=self._position, limit=self._batch_size)
        verifying = asyncio.ensure_future(judge(records))
        while records:
            after = dict(self._position)
            for record in records:
                after[record.partition] = max(after.get(record.partition, 0), record.offset)
            following: list[LogRecord] = []
            if not clock_covers(after, target):
                following = await self._log.read(after=after, limit=self._batch_size)
            next_verifying = asyncio.ensure_future(judge(following))
            await self._applied_when_free(await verifying)
            self._progress.changed()
            if progress is not None:
                progress(len(records))
            records, verifying = following, next_verifying
        await verifying
        return self.position

    async def _applied_when_free(self, verdicts: Sequence[Verdict]) -> None:
        """:meth:`_applied`, trying again while another node of the host applies to a shared model."""
        while True:
            try:
                self._applied(verdicts)
                return
            except ReadModelBusyError:
                await asyncio.sleep(self.busy_retry)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._failure = None
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="projection-runner")

    async def _run(self) -> None:
        backoff = 0.05
        try:
            while not self._stopping:
                try:
                    read = await self.step()
                    if read < self._batch_size:
                        # The log held no more than this: wait for an append (at once if one is known already)
                        # rather than read again, which costs a round trip on a networked log.
                        await self._commit_position()
                        await self._wait_for_more(timeout=self.idle_poll)
                        if read > 1 and self.linger > 0:
                            await asyncio.sleep(self.linger)
                    backoff = 0.05
                except (LogError, ReadModelError) as exc:
                    if isinstance(exc, LogError) and not exc.retriable:
                        raise
                    # A log outage or a busy read model is temporary: keep the position and try again.
                    log.warning("projector waiting %.2fs after: %s", backoff, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.exception("projector stopped")
            self._failure = exc
            self._progress.changed()  # the waiters learn of the failure now, not at their timeout
            raise

    async def _wait_for_more(self, *, timeout: float) -> None:
        """Until the log may hold a record past this runner's position, or ``timeout``.

        A wake-up that only announces records :meth:`offer` applied meanwhile (this node's own appends: the log
        tells of them as it stores them, about when the append is acknowledged) is not a reason to read: the read
        would find nothing, at the cost of a round trip. So the wait goes on from the new position, still bounded
        by ``timeout`` in all."""
        leader = self._leader
        if leader is not None and not leader._dead():
            # It is handed what its leader applies: only a record the leader holds and this runner does not
            # (not handed on) is a reason to read.
            await leader._progress.until(lambda: leader._dead() or not clock_covers(self._position, leader._position),
                                         timeout=timeout)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            before = self._position
            await self._log.wait_for_append(before, timeout=left)
            if self._position == before:
                return  # nothing was offered meanwhile: what woke us is past our position (or the time is up)

    async def _commit_position(self) -> None:
        """Mirror the position into the log's consumer positions when it moved and enough time passed. Runs in
        a task of its own: a slow commit (a consumer-group join, a KV bucket being created) never stalls
        applying."""
        now = asyncio.get_running_loop().time()
        busy = self._commit_task is not None and not self._commit_task.done()
        if (self._consumer is None or busy or self._position == self._committed
                or now - self._last_commit < self._commit_every):
            return
        self._last_commit = now
        self._commit_task = asyncio.create_task(self._commit(self._consumer, dict(self._position)))

    async def _commit(self, consumer: str, position: Clock) -> None:
        try:
            await self._log.commit_position(consumer, position)
        except LogError as exc:  # informational only: the tracking row in the read model is what counts
            log.warning("could not record projector position in the log: %s", exc)
            return
        self._committed = position

    async def wait(self, clock: Clock, *, timeout: float = 10.0) -> Clock:
        """Return once the model has applied ``clock``; re-raise the runner's failure if it died.

        Raises:
            WaitTimeoutError: not reached in time (the events stay in the log and will be applied).
            ProjectionStoppedError: the runner is not running.
        """
        if clock_covers(self._position, clock):
            return self.position
        if self._task is None:
            # No background runner (one-shot CLI use): apply in the foreground.
            deadline = asyncio.get_running_loop().time() + timeout
            while not clock_covers(self._position, clock):
                if not await self.step():
                    if asyncio.get_running_loop().time() > deadline:
                        raise WaitTimeoutError(clock, self.position, timeout)
                    await self._log.wait_for_append(self._position, timeout=0.05)
            return self.position
        if not await self._progress.until(lambda: clock_covers(self._position, clock) or self._dead(),
                                          timeout=timeout):
            raise WaitTimeoutError(clock, self.position, timeout)
        if not clock_covers(self._position, clock):
            raise ProjectionStoppedError(self._failure)
        return self.position

    def _dead(self) -> bool:
        return self._failure is not None or (self._task is not None and self._task.done())

    async def stop(self) -> None:
        """Stop the background runner. Cancels until the task is really done: on Python 3.11 a client library
        waiting with ``asyncio.wait_for`` can swallow one cancellation, so the loop also checks a flag."""
        commit, self._commit_task = self._commit_task, None
        await stop_task(commit, give_up_after=1.0)
        task, self._task = self._task, None
        self._stopping = True
        await stop_task(task)
