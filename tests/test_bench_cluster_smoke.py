"""The cluster benchmark runs end to end at a small size (figures only, no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.bench_cluster import render
from bench.stats import Summary

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.nats
def test_quick_cluster_benchmark_reports_every_quorum(tmp_path: Path, nats_server: object) -> None:
    # (nats_server: the same skip-or-fail rule as every NATS test when the binary is missing.)
    done = subprocess.run([sys.executable, "-m", "bench.bench_cluster", "--quick", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((tmp_path / "bench_cluster.json").read_text())["results"]
    assert set(results) == {"embedded", "nats_r3_w1", "nats_r3_w2", "nats_r3_w3"}
    assert all(r["p50_ms"] > 0 and r["per_s"] > 0 for r in results.values())


def test_table() -> None:
    s = Summary(count=2, p50_ms=2.0, p95_ms=3.0, p99_ms=3.0, max_ms=3.0, wall_s=1.0)
    table = render({"embedded": s, "nats_r3_w2": Summary(2, 4.0, 5.0, 5.0, 5.0, 1.0)})
    assert "2.00x" in table.splitlines()[-1]
