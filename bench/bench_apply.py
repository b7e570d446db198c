"""Apply cost per event: what every node pays for every event, without a log, HTTP or other processes.

    python -m bench.bench_apply [--events N] [--batches 1,8,16] [--repeat R] [--quick] [--out bench/results]

A node runs three projectors over each event: the SQLite read model, the HNSW index (the embedder off here, as in
``bench_fleet``: no vectors) and the webhook delivery store (no subscription). For each batch size B and each
path, a fresh data directory applies N signed ``memory.stored`` events in batches of B:

* ``writer``: events this process signed, handed to the runners with ``offer`` (no verification);
* ``follower``: events decoded from their stored bytes and verified once for all three runners, as a follower
  reads them from the log (decoding is counted: it happens once per event on every follower).

Reported: process CPU microseconds per event (all threads: the read model's WAL checkpointer included), best
and median of R repeats. The machine is shared and noisy: compare two trees by running this with each on
``PYTHONPATH`` in turn, alternating, and compare the ratios. ``bench_apply.json`` is written to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.bench_logs import make_events
from infra.log import LogRecord
from projectors import DeliveryStore, SharedVerifyRunner, SQLiteReadModel, VerifiedEvents
from projectors.hnsw.model import HnswReadModel
from schemas import Keyring, SignedEvent, load_or_create_node_key

__all__ = ["PATHS", "main", "measure", "render"]

PATHS = ("writer", "follower")


def _records(events: Sequence[SignedEvent], first: int, path: str) -> list[LogRecord]:
    if path == "follower":  # as a follower's log read makes them: from the stored bytes
        events = [SignedEvent.from_parts(e.body, e.signature) for e in events]
    return [LogRecord("bench", first + i, e) for i, e in enumerate(events)]


def _apply_once(events: Sequence[SignedEvent], keys: Path, work: Path, path: str, batch: int) -> float:
    """CPU seconds of applying ``events`` in batches of ``batch`` on a fresh node's three projectors."""
    keyring = Keyring.from_dirs(keys)
    model = SQLiteReadModel(work / "readmodel.db")
    model.partitioned = False  # a log of one partition, as NATS and the embedded log
    hnsw = HnswReadModel.open(work / "hnsw")
    deliveries = DeliveryStore(work / "deliveries.db", node_id="bench-node" if path == "writer" else "other-node")
    deliveries.set_horizon({})
    verified = VerifiedEvents()
    # The runners never read the log here: their records are offered or judged and applied directly.
    runners = [SharedVerifyRunner(None, m, keyring, verified=verified)
               for m in (model, hnsw, deliveries)]
    try:
        started = time.process_time()
        for first in range(0, len(events), batch):
            records = _records(events[first:first + batch], first + 1, path)
            for runner in runners:
                if path == "writer":
                    runner.offer(records)
                else:
                    runner._applied(runner.judge_all(records))
        spent = time.process_time() - started
        if model.applied_count() != len(events):
            msg = f"applied {model.applied_count()} of {len(events)} events"
            raise RuntimeError(msg)
        return spent
    finally:
        model.close()
        hnsw.close()
        deliveries.close()


def measure(events: int, batches: Sequence[int], repeat: int, root: Path) -> dict[str, dict[str, float]]:
    """Per ``path/batch``: CPU µs per event, best and median of ``repeat`` runs (interleaved, so a burst of load
    from elsewhere touches every configuration alike)."""
    key = load_or_create_node_key(root / "keys", "bench-node")
    signed = make_events(key, events)
    spent: dict[str, list[float]] = {f"{path}/{b}": [] for path in PATHS for b in batches}
    for round_ in range(repeat):
        for label in spent:
            path, batch = label.split("/")
            work = root / f"{round_}-{path}-{batch}"
            work.mkdir()
            spent[label].append(_apply_once(signed, root / "keys", work, path, int(batch)) / events * 1e6)
    return {label: {"best_us": min(us), "median_us": statistics.median(us), "runs": len(us)}
            for label, us in spent.items()}


def render(results: dict[str, dict[str, float]]) -> str:
    lines = [f"{'path':<10} {'batch':>5} {'best us/event':>14} {'median':>8}"]
    for label, r in results.items():
        path, batch = label.split("/")
        lines.append(f"{path:<10} {batch:>5} {r['best_us']:>14.0f} {r['median_us']:>8.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_apply", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events per run (default 2000)")
    parser.add_argument("--batches", default="1,8,16", help="comma-separated batch sizes (default 1,8,16)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (default 3)")
    parser.add_argument("--quick", action="store_true", help="200 events, batches 1 and 8, one run each")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    events, repeat = (200, 1) if args.quick else (args.events, args.repeat)
    batches = [1, 8] if args.quick else [int(b) for b in args.batches.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-apply-") as tmp:
        results = measure(events, batches, repeat, Path(tmp))
    print(render(results))
    args.out.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {"meta": {"events": events, "repeat": repeat, "python": sys.version.split()[0]},
                                "results": results}
    (args.out / "bench_apply.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
