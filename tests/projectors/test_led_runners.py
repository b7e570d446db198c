"""A node's other read models follow its memory projector (``ProjectionRunner.lead``): each batch is read from the
log and judged once, then handed on; a follower reads the log itself only for what it was not handed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from infra.log import LogRecord
from infra.log.embedded import EmbeddedLog
from projectors import (
    ApplyResult,
    ProjectionRunner,
    ReadModelError,
    SharedVerifyRunner,
    SQLiteReadModel,
    Verdict,
    VerifiedEvents,
)
from schemas import Keyring
from tests.factories import CountingLog, node_key, signed


class Judging(SharedVerifyRunner):
    """Counts the records it verifies (or looks up) itself."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.judged: list[int] = []

    def judge(self, record: LogRecord) -> Verdict:
        self.judged.append(record.offset)
        return super().judge(record)


class FailingOnce(SQLiteReadModel):
    """A model whose next batch fails (a full disk, say), and then works again."""

    fail = True

    def apply_batch(self, verdicts: Sequence[Verdict]) -> ApplyResult:
        if self.fail:
            self.fail = False
            msg = "disk full"
            raise ReadModelError(msg)
        return super().apply_batch(verdicts)


@asynccontextmanager
async def _leading(tmp_path: Path, keyring: Keyring, leading: SQLiteReadModel,
                   following: SQLiteReadModel) -> AsyncIterator[tuple[Judging, Judging, CountingLog]]:
    """A leader and its follower running on one log (the follower with a log instance of its own, whose reads
    are counted from the moment both wait), then stopped and closed."""
    log, follower_log = CountingLog(tmp_path / "log.db"), CountingLog(tmp_path / "log.db")
    verified = VerifiedEvents()
    leader = Judging(log, leading, keyring, verified=verified)
    follower = Judging(follower_log, following, keyring, verified=verified)
    follower.idle_poll = 30.0  # what it reads, it reads because its leader is ahead, not at its idle poll
    leader.lead(follower)
    leader.start()
    follower.start()
    await asyncio.sleep(0.3)  # the runners' first (empty) reads are done: each now waits
    follower_log.reads = 0
    try:
        yield leader, follower, follower_log
    finally:
        for runner in (leader, follower):
            await runner.stop()
        for model in (leading, following):
            model.close()
        for each in (log, follower_log):
            await each.close()


async def test_a_follower_is_handed_each_batch_and_reads_nothing(tmp_path: Path) -> None:
    # The leader reads, judges and applies; the follower takes the same verdicts (a refusal included) without a
    # log read or a signature check of its own.
    key, intruder = node_key(tmp_path), node_key(tmp_path / "other", "intruder")
    models = SQLiteReadModel(tmp_path / "a.db"), SQLiteReadModel(tmp_path / "b.db")
    async with _leading(tmp_path, Keyring({key.key_id: key.public_bytes}), *models) as (leader, follower, reads):
        positions = await leader._log.append([signed(key), signed(intruder), signed(key)])
        await leader.wait({positions[-1].partition: positions[-1].offset}, timeout=5)
        await follower.wait(leader.position, timeout=1)
        assert follower.position == leader.position
        assert (models[1].applied_count(), models[1].rejected_count()) == (2, 1)
        assert reads.reads == 0 and follower.judged == [] and leader.judged == [1, 2, 3]


async def test_a_follower_whose_model_fails_a_batch_reads_it_itself(tmp_path: Path) -> None:
    # Its failure is its own: the leader's batch stands, and the follower reads what it missed from the log soon
    # after (its leader is ahead of it), not at its idle poll.
    key = node_key(tmp_path)
    leading, failing = SQLiteReadModel(tmp_path / "a.db"), FailingOnce(tmp_path / "b.db")
    async with _leading(tmp_path, Keyring({key.key_id: key.public_bytes}), leading, failing) as (
            leader, follower, reads):
        (pos,) = await leader._log.append([signed(key)])
        await leader.wait({pos.partition: pos.offset}, timeout=5)
        assert leading.applied_count() == 1
        await follower.wait(leader.position, timeout=5)
        assert failing.applied_count() == 1 and reads.reads >= 1


async def test_a_leader_on_a_shared_model_hands_on_what_another_node_applied(tmp_path: Path) -> None:
    # Another node of the host applied the records to the shared model: the leader moves past them and hands its
    # followers the model's word on them, so only the record the model refused is checked here (as a follower's
    # own judgement would have done).
    key, intruder = node_key(tmp_path), node_key(tmp_path / "other", "intruder")
    keyring = Keyring({key.key_id: key.public_bytes})
    log = EmbeddedLog(tmp_path / "log.db")
    elsewhere, shared, own = (SQLiteReadModel(tmp_path / name) for name in ("shared.db", "shared.db", "own.db"))
    elsewhere.shared = shared.shared = True
    leader = Judging(log, shared, keyring, verified=VerifiedEvents())
    follower = Judging(log, own, keyring, verified=leader.verified, host=shared)
    leader.lead(follower)
    await log.append([signed(key), signed(intruder), signed(key)])
    assert await ProjectionRunner(log, elsewhere, keyring).step() == 3
    assert await leader.step() == 3
    assert follower.position == leader.position == await log.end_offsets()
    assert (own.applied_count(), own.rejected_count()) == (2, 1)
    assert leader.judged == [2] and follower.judged == []
    for model in (elsewhere, shared, own):
        model.close()
    await log.close()
