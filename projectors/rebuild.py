"""Replay a whole log into a fresh read model, then swap it in: read models are disposable.

Every replay audits each writer's hash chain (pass ``chain`` to read the result). With ``refuse_breaks``, a log
that breaks a chain (a record deleted, moved, duplicated) raises :class:`ChainBrokenError` before the swap, so the
old read model stays: a memory whose deletion was cut out of the log does not silently come back."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from infra.log import Clock, EventLog, redact_url
from projectors.base import ApplyResult, ProjectionRunner, ReadModel, Verdict
from projectors.errors import ChainBrokenError
from projectors.sqlite import SQLiteReadModel
from projectors.verifier import catch_up
from schemas import ChainAudit, Keyring

__all__ = ["rebuild_hnsw", "rebuild_postgres", "rebuild_sqlite"]


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


@contextlib.contextmanager
def _sqlite_scratch(target: Path, log: EventLog) -> Iterator[SQLiteReadModel]:
    """A bulk model in a scratch file beside ``target``, which replaces ``target`` only if the block succeeds."""
    scratch = target.with_name(target.name + ".rebuild")
    _remove(scratch)
    model = SQLiteReadModel(scratch, bulk=True)
    # As the node runs it: a log of one partition keeps no merge history (kept and settled, it made a rebuild
    # 2.4x slower on SQLite and 4x on Postgres).
    model.partitioned = log.partitioned
    model.set_meta("log_url", redact_url(log.url))
    try:
        yield model
        model.finish_bulk()
    finally:
        model.close()
    _remove(target)
    os.replace(scratch, target)


@contextlib.contextmanager
def _hnsw_scratch(directory: Path) -> Iterator[ReadModel]:
    """A vector index in a scratch directory beside ``directory``, swapped in whole if the block succeeds; a
    server that has the index open keeps the old one, so stop it first."""
    from projectors.hnsw import HnswReadModel

    scratch = directory.with_name(directory.name + ".rebuild")
    shutil.rmtree(scratch, ignore_errors=True)
    model = HnswReadModel.open(scratch)
    try:
        yield model
        model.save()
    finally:
        model.close()
    (scratch / "lock").unlink(missing_ok=True)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(scratch, directory)


class _Both(ReadModel):
    """Two fresh read models fed by one replay: every event is read, verified and decoded once for both."""

    def __init__(self, first: ReadModel, second: ReadModel) -> None:
        self._first, self._second = first, second

    def position(self) -> Clock:
        return self._first.position()

    def apply_batch(self, verdicts: Sequence[Verdict]) -> ApplyResult:
        self._second.apply_batch(verdicts)
        return self._first.apply_batch(verdicts)


async def rebuild_sqlite(log: EventLog, keyring: Keyring, target: Path, *,
                         progress: Callable[[int, int], None] | None = None, batch_size: int = 2000,
                         verify_in_child: bool | None = None, vectors: Path | None = None,
                         chain: ChainAudit | None = None, refuse_breaks: bool = False) -> Clock:
    """Build ``target`` from every event in ``log``; the old file is replaced only when the new one is complete.

    ``vectors``: also build the vector index of that directory in the same pass (see :func:`rebuild_hnsw`).
    ``progress(done, total)`` is called after each batch. Returns the position the new model reached.
    """
    with contextlib.ExitStack() as stack:
        model: ReadModel = stack.enter_context(_sqlite_scratch(target, log))
        if vectors is not None:
            model = _Both(model, stack.enter_context(_hnsw_scratch(vectors)))
        return await _replay(log, keyring, model, progress=progress, batch_size=batch_size,
                             verify_in_child=verify_in_child, chain=chain, refuse_breaks=refuse_breaks)


async def rebuild_hnsw(log: EventLog, keyring: Keyring, directory: Path, *,
                       progress: Callable[[int, int], None] | None = None, batch_size: int = 2000,
                       chain: ChainAudit | None = None, refuse_breaks: bool = False) -> Clock:
    """Build the vector index of ``directory`` afresh from the vectors in ``log`` (no model needed), then swap
    it in whole; a server that has the index open keeps it, so stop it first."""
    with _hnsw_scratch(directory) as model:
        return await _replay(log, keyring, model, progress=progress, batch_size=batch_size, chain=chain,
                             refuse_breaks=refuse_breaks)


async def rebuild_postgres(log: EventLog, keyring: Keyring, url: str, *,
                           progress: Callable[[int, int], None] | None = None, batch_size: int = 2000,
                           chain: ChainAudit | None = None) -> Clock:
    """Empty the Postgres read model at ``url`` (every table dropped and migrated again), then replay ``log``
    into it, building the vector index once at the end. Not atomic, unlike the SQLite rebuild: nodes reading it
    see it fill up, so stop them first (and audit the log first: a break found here is found too late)."""
    from projectors.postgres import PostgresReadModel, reset
    from projectors.postgres.schema import connect

    engine = connect(url)
    try:
        reset(engine)
        model = PostgresReadModel(url, engine=engine)
        model.partitioned = log.partitioned  # as the nodes run it (see _sqlite_scratch)
        model.set_meta("log_url", redact_url(log.url))
        with model.bulk():
            return await _replay(log, keyring, model, progress=progress, batch_size=batch_size, chain=chain)
    finally:
        engine.dispose()


async def _replay(log: EventLog, keyring: Keyring, model: ReadModel, *,
                  progress: Callable[[int, int], None] | None, batch_size: int,
                  verify_in_child: bool | None = None, chain: ChainAudit | None = None,
                  refuse_breaks: bool = False) -> Clock:
    """``verify_in_child``: check signatures in a child process (:mod:`projectors.verifier`); None decides by
    the log's length."""
    runner = ProjectionRunner(log, model, keyring, batch_size=batch_size, chain=chain or ChainAudit())
    end = await log.end_offsets()
    total, done = sum(end.values()), 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    position = await catch_up(runner, progress=advance, in_child=verify_in_child)
    if refuse_breaks and (breaks := runner.chain.finish()):
        raise ChainBrokenError(breaks)
    return position
