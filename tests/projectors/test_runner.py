"""The projector runtime: waits, retries on a retriable log outage, and reports a fatal failure to waiters."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from infra.log import Clock, LogError, LogRecord, LogUnavailableError
from infra.log.embedded import EmbeddedLog
from projectors import (
    ApplyResult,
    ProjectionRunner,
    ProjectionStoppedError,
    SharedVerifyRunner,
    SQLiteReadModel,
    Verdict,
    VerifiedEvents,
    WaitTimeoutError,
)
from schemas import Keyring, NodeKey
from tests.factories import CountingLog, node_key, signed


class FlakyLog(EmbeddedLog):
    """An embedded log whose reads fail ``failures`` times with the given error."""

    def __init__(self, path: Path, error: LogError, failures: int) -> None:
        super().__init__(path)
        self.error = error
        self.failures = failures

    async def read(self, *, after: Clock | None = None, limit: int = 1000) -> list[LogRecord]:
        if self.failures > 0:
            self.failures -= 1
            raise self.error
        return await super().read(after=after, limit=limit)


@pytest.fixture
def key(tmp_path: Path) -> NodeKey:
    return node_key(tmp_path)


@pytest.fixture
async def model(tmp_path: Path) -> AsyncIterator[SQLiteReadModel]:
    m = SQLiteReadModel(tmp_path / "rm.db")
    yield m
    m.close()


async def test_runner_rides_out_a_retriable_outage(tmp_path: Path, key: NodeKey, model: SQLiteReadModel) -> None:
    log = FlakyLog(tmp_path / "log.db", LogUnavailableError("no leader"), failures=3)
    runner = ProjectionRunner(log, model, Keyring({key.key_id: key.public_bytes}))
    runner.start()
    (pos,) = await log.append([signed(key)])
    assert (await runner.wait({pos.partition: pos.offset}, timeout=5))[pos.partition] == pos.offset
    await runner.stop()
    await log.close()


async def test_fatal_failure_reaches_waiters(tmp_path: Path, key: NodeKey, model: SQLiteReadModel) -> None:
    log = FlakyLog(tmp_path / "log.db", LogError("disk on fire"), failures=1)
    runner = ProjectionRunner(log, model, Keyring({key.key_id: key.public_bytes}))
    runner.start()
    (pos,) = await log.append([signed(key)])
    with pytest.raises(ProjectionStoppedError) as info:
        await runner.wait({pos.partition: pos.offset}, timeout=5)
    assert "disk on fire" in str(info.value.cause)
    await runner.stop()
    await log.close()


async def test_wait_times_out_plainly(tmp_path: Path, model: SQLiteReadModel) -> None:
    log = EmbeddedLog(tmp_path / "log.db")
    runner = ProjectionRunner(log, model, Keyring())
    runner.start()
    with pytest.raises(WaitTimeoutError, match=r"within 0\.2s"):
        await runner.wait({"ai-memory": 99}, timeout=0.2)
    await runner.stop()
    await log.close()


async def test_offered_records_cost_no_read_but_others_appends_are_read(tmp_path: Path, key: NodeKey,
                                                                        model: SQLiteReadModel) -> None:
    # The writer hands the runner what it appended (offer); the log's news of that same append must not send the
    # runner reading (a round trip on a networked log that finds nothing), while an append it was not offered is
    # read and applied at once, long before the idle poll.
    log = CountingLog(tmp_path / "log.db")
    runner = ProjectionRunner(log, model, Keyring({key.key_id: key.public_bytes}))
    runner.idle_poll = 30.0
    runner.start()
    await asyncio.sleep(0.2)  # the first (empty) read is done: the runner waits for news of an append
    log.reads = 0
    await log.append([signed(key), signed(key)])
    records = await log.read()
    log.reads = 0
    assert runner.offer(records)
    await asyncio.sleep(0.3)
    assert log.reads == 0
    (pos,) = await log.append([signed(key)])
    await runner.wait({pos.partition: pos.offset}, timeout=5)
    assert log.reads >= 1
    await runner.stop()
    await log.close()


async def test_a_busy_runner_lets_records_gather_and_reads_a_lone_one_at_once(tmp_path: Path, key: NodeKey,
                                                                             model: SQLiteReadModel) -> None:
    # After a read that found several records, the runner waits ``linger`` before reading again, so what arrives
    # meanwhile is applied in one batch; after a read of one record (nothing is queueing) it reads at once.
    log = CountingLog(tmp_path / "log.db")
    runner = ProjectionRunner(log, model, Keyring({key.key_id: key.public_bytes}))
    runner.idle_poll = 30.0
    runner.linger = 1.0
    runner.start()
    loop = asyncio.get_running_loop()

    async def applied_after(count: int) -> tuple[float, int]:
        """Append ``count`` records one by one; (seconds until all were applied, reads it took)."""
        reads, started = log.reads, loop.time()
        for _ in range(count):
            (pos,) = await log.append([signed(key)])
        await runner.wait({pos.partition: pos.offset}, timeout=10)
        return loop.time() - started, log.reads - reads

    assert (await applied_after(1))[0] < 0.8  # after an empty read: at once
    positions = await log.append([signed(key), signed(key)])
    await runner.wait({positions[-1].partition: positions[-1].offset}, timeout=10)  # one read of two records
    seconds, reads = await applied_after(3)
    assert seconds >= 0.9  # the runner lingered before reading
    assert reads == 1  # and read all three at once
    assert (await applied_after(1))[0] >= 0.9  # the last read found three: it lingers again
    assert (await applied_after(1))[0] < 0.8  # the last read found one: at once
    await runner.stop()
    await log.close()


async def test_only_a_runner_that_audits_chains_follows_them(tmp_path: Path, key: NodeKey,
                                                             model: SQLiteReadModel) -> None:
    log = EmbeddedLog(tmp_path / "log.db")
    keyring = Keyring({key.key_id: key.public_bytes})
    other = SQLiteReadModel(tmp_path / "other.db")
    auditing, quiet = ProjectionRunner(log, model, keyring), ProjectionRunner(log, other, keyring, audit_chain=False)
    await log.append([signed(key) for _ in range(3)])
    for runner in (auditing, quiet):
        await runner.catch_up()
    assert sum(auditing.chain.summary().values()) > 0  # the three were seen (chained or not)
    assert set(quiet.chain.summary().values()) == {0}
    other.close()
    await log.close()


class JudgeCounting(ProjectionRunner):
    """A runner that counts the records it verifies."""

    judged = 0

    def judge(self, record: LogRecord) -> Verdict:
        self.judged += 1
        return super().judge(record)


async def test_a_runner_on_a_shared_model_skips_what_another_process_applied(tmp_path: Path, key: NodeKey) -> None:
    # Two nodes of one host on one SQLite read model: whichever reads a record first applies it; the other
    # moves past it without verifying or applying it again.
    log = EmbeddedLog(tmp_path / "log.db")
    keyring = Keyring({key.key_id: key.public_bytes})
    models = [SQLiteReadModel(tmp_path / "shared.db"), SQLiteReadModel(tmp_path / "shared.db")]
    for model in models:
        model.shared = True
    applied: list[list[int]] = [[], []]

    def counter(n: int) -> Callable[[ApplyResult], None]:
        return lambda result: applied[n].append(result.applied)

    first, second = (JudgeCounting(log, m, keyring, on_applied=counter(n)) for n, m in enumerate(models))
    await log.append([signed(key) for _ in range(5)])
    assert await first.step() == 5
    assert await second.step() == 5
    assert (first.judged, second.judged) == (5, 0)
    assert second.position == first.position == await log.end_offsets()
    assert applied == [[5], []]
    await log.append([signed(key) for _ in range(2)])
    assert await second.step() == 2 and await first.step() == 2
    assert (first.judged, second.judged) == (5, 2)
    assert models[0].applied_count() == 7 and models[0].rejected_count() == 0
    for model in models:
        model.close()
    await log.close()


async def test_a_runner_on_a_shared_model_does_not_wait_for_another_nodes_lock(tmp_path: Path, key: NodeKey) -> None:
    # While another node of the host holds the write lock (it is applying), a runner neither blocks its event loop
    # on the lock nor applies: its step returns, its offer is declined (the records are read later), nothing
    # changed; once the lock is free it applies.
    log = EmbeddedLog(tmp_path / "log.db")
    model = SQLiteReadModel(tmp_path / "shared.db")
    model.shared = True
    runner = JudgeCounting(log, model, Keyring({key.key_id: key.public_bytes}))
    await log.append([signed(key) for _ in range(3)])
    other = sqlite3.connect(tmp_path / "shared.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await runner.step() == 3
    assert not runner.offer(await log.read())
    assert loop.time() - started < 2  # not the 10 s a statement waits for a lock
    assert runner.position == {} and model.applied_count() == 0
    other.execute("COMMIT")
    other.close()
    assert await runner.step() == 3
    assert runner.position == await log.end_offsets() and model.applied_count() == 3
    model.close()
    await log.close()


async def test_the_hosts_other_runners_take_what_a_shared_model_vouches_for(tmp_path: Path, key: NodeKey) -> None:
    # A node's HNSW and delivery runners need not check a signature that the node which applied the record to the
    # host's shared model checked: what that model holds unrefused. A record it refused, one it has not reached,
    # and one whose signer this node does not trust are checked here, as always.
    log = EmbeddedLog(tmp_path / "log.db")
    keyring = Keyring({key.key_id: key.public_bytes})
    intruder = node_key(tmp_path / "other", "intruder")
    applier_model, host, unshared = (SQLiteReadModel(tmp_path / "shared.db") for _ in range(3))
    applier_model.shared = host.shared = True
    own = [SQLiteReadModel(tmp_path / f"own{n}.db") for n in range(4)]
    await log.append([signed(key), signed(intruder), signed(key)])
    assert await ProjectionRunner(log, applier_model, keyring).step() == 3
    assert applier_model.rejected_count() == 1
    await log.append([signed(key)])  # not applied to the shared model yet
    records = await log.read()

    class Counting(SharedVerifyRunner):
        judged: list[int]

        def judge(self, record: LogRecord) -> Verdict:
            self.judged.append(record.offset)
            return super().judge(record)

    def judged(trusted: Keyring, model: SQLiteReadModel, vouching: SQLiteReadModel,
               verified: VerifiedEvents | None = None) -> tuple[list[bool], list[int]]:
        runner = Counting(log, model, trusted, verified=verified or VerifiedEvents(), host=vouching)
        runner.judged = []
        return [v.rejected is None for v in runner.judge_now(records)], runner.judged

    process = VerifiedEvents()  # what one node's runners share
    assert judged(keyring, own[0], host, process) == ([True, False, True, True], [2, 4])
    asked: list[int] = []
    vouched = host.vouched

    def asking(records: Sequence[LogRecord]) -> set[tuple[str, int]]:
        asked.extend(r.offset for r in records)
        return vouched(records)

    host.vouched = asking  # type: ignore[method-assign]
    # The node's other runner: what the first verified or was vouched for is in the set; the host is asked only
    # about the rest (the refused record).
    assert judged(keyring, own[3], host, process) == ([True, False, True, True], [1, 2, 3, 4])
    assert asked == [2]
    assert judged(Keyring({}), own[1], host) == ([False] * 4, [1, 2, 3, 4])
    assert judged(keyring, own[2], unshared) == ([True, False, True, True], [1, 2, 3, 4])  # a node's own model
    for model in (applier_model, host, unshared, *own):
        model.close()
    await log.close()
