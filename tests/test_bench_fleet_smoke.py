"""The fleet benchmark runs end to end at a small size (figures only, no timing asserts): every configuration
answers, and no unique-title write is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.bench_fleet import plan, render
from bench.cputime import cpu_snapshot, ms_per_op

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.nats
def test_quick_fleet_benchmark(tmp_path: Path, nats_server: object) -> None:
    # (nats_server: the same skip-or-fail rule as every NATS test when the binary is missing.)
    done = subprocess.run([sys.executable, "-m", "bench.bench_fleet", "--quick", "--seconds", "1", "--writers", "2",
                           "--raw", "50", "--only", "embedded,nats_n1_w1,nats_n2_w2,nats_n2_w1_shared",
                           "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((tmp_path / "bench_fleet.json").read_text())
    assert set(report["results"]) == {"embedded", "nats_n1_w1", "nats_n2_w2", "nats_n2_w1_shared"}
    assert all(r["acked"] > 0 and r["p50_ms"] > 0 for r in report["results"].values())
    assert sum(r["refused"] for r in report["results"].values()) == 0
    assert report["raw"]["serial_per_s"] > 0
    assert "vs 1 node" in done.stdout
    # CPU per write by component: the server and the client always spend some; nats-servers only under NATS.
    cpu = {label: r["cpu_ms_per_write"] for label, r in report["results"].items()}
    assert all(c["serve"] > 0 and c["client"] > 0 for c in cpu.values())
    assert cpu["embedded"]["nats-server"] == 0 and cpu["nats_n1_w1"]["nats-server"] > 0


def test_plan_and_table() -> None:
    labels = [c.label for c in plan(16)]
    assert labels[0] == "embedded" and "nats_n3_w2_c1" in labels
    one = next(c for c in plan(16) if c.label == "nats_n3_w2_one")  # the latency target: one writer in all
    assert (one.nodes, one.quorum, one.writers, one.loaded) == (3, 2, 1, 1)
    shared = next(c for c in plan(16) if c.label == "nats_n3_w1_shared")  # three nodes of one host, one read model
    assert (shared.nodes, shared.quorum, shared.shared) == (3, 1, True)
    row = {"nodes": 2, "quorum": 1, "writers": 4, "per_s": 300.0, "p50_ms": 2.0, "p95_ms": 3.0, "refused": 0,
           "embedded": False, "acked": 10}
    table = render({"nats_n1_w1": {**row, "nodes": 1, "per_s": 200.0}, "nats_n2_w1": row},
                   {"serial_per_s": 1000.0, "pipelined16_per_s": 5000.0})
    assert "1.50x" in table
    lone = render({"nats_n3_w2_one": {**row, "nodes": 3, "writers": 1, "loaded": 1}},
                  {"serial_per_s": 1000.0, "pipelined16_per_s": 5000.0})
    assert lone.splitlines()[1].split()[3] == "1"  # writers in all: one, although three nodes run
    costly = render({"nats_n1_w1": {**row, "nodes": 1, "cpu_ms_per_write": {"serve": 1.0, "client": 0.5,
                                                                             "nats-server": 0.5}},
                     "nats_n3_w1": {**row, "nodes": 3, "per_s": 400.0,
                                    "cpu_ms_per_write": {"serve": 3.0, "client": 1.0, "nats-server": 1.0}}},
                    {"serial_per_s": 1000.0, "pipelined16_per_s": 5000.0}, cores=2)
    assert "nats_n1_w1         1.00 / 0.50 / 0.50 = 2.00   1000/s at most (30% used)" in costly
    assert "nats_n3_w1         3.00 / 1.00 / 1.00 = 5.00   400/s at most (100% used)" in costly
    assert "match one node's 300 writes/s on 2 cores only at 6.67 ms of CPU per write" in costly


def test_cpu_per_op_counts_this_process() -> None:
    before = cpu_snapshot({"me": [os.getpid()], "gone": [2**22 + 1]})
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # spend at least 0.2 s of CPU here
        pass
    per = ms_per_op(before, cpu_snapshot({"me": [os.getpid()], "gone": [2**22 + 1]}), 10)
    assert per["me"] >= 15.0  # >= 150 ms over 10 operations (ticks round down by at most 10 ms)
    assert per["gone"] == 0.0
    assert ms_per_op(before, before, 0) == {"me": 0.0, "gone": 0.0}
