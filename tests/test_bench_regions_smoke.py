"""The hive benchmark runs end to end at a small size: every write is applied in the far region, the simulated
link's delay shows in the lag (a write cannot reach region c before half the round trip), and after a short
partition with writes on both sides every node converges."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.nats
def test_quick_regions_benchmark(tmp_path: Path, nats_server: object) -> None:
    # (nats_server: the same skip-or-fail rule as every NATS test when the binary is missing.)
    done = subprocess.run([sys.executable, "-m", "bench.bench_regions", "--samples", "3", "--delays", "0,60",
                           "--partition-s", "2", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((tmp_path / "bench_regions.json").read_text())["results"]
    assert set(results) == {"0", "60"}
    assert all(len(r["lag_ms"]) == len(r["write_ms"]) == 3 for r in results.values())
    assert min(results["60"]["lag_ms"]) >= 30.0  # one way of a 60 ms round trip
    assert "regional write W=2 p95 (60 ms links)" in done.stdout
    partition = results["60"]["partition"]  # the last hive only: cut, both sides wrote, healed, converged
    assert results["0"]["partition"] is None
    assert partition["writes_a"] > 0 and partition["writes_c"] > 0 and partition["converged_s"] > 0
