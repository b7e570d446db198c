"""The log benchmark runs end to end at small sizes on all three backends (figures only, no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.bench_logs import percentile, render

REPO = Path(__file__).resolve().parents[1]
FIGURES = ("append_p50_ms", "append_p95_ms", "append_per_s", "append_batch_per_s", "catch_up_per_s")


@pytest.mark.slow
@pytest.mark.nats
def test_quick_log_benchmark_reports_every_backend(tmp_path: Path, kafka_broker: object) -> None:
    # (kafka_broker: the same skip-or-fail rule as every Kafka test when tansu is missing.)
    done = subprocess.run([sys.executable, "-m", "bench.bench_logs", "--quick", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((tmp_path / "bench_logs.json").read_text())["results"]
    assert set(results) == {"embedded", "nats", "kafka"}
    for backend, figures in results.items():
        for name in FIGURES:
            assert figures[name] > 0, (backend, name)
    assert "kafka/nats" in done.stdout and "projector catch-up" in done.stdout


def test_percentiles_and_table() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    row = dict.fromkeys(FIGURES, 2.0)
    table = render({"embedded": row, "nats": row, "kafka": {**row, "catch_up_per_s": 4.0}})
    assert "2.00x" in table.splitlines()[-1]
