"""The core benchmark runs end to end at small sizes and reports every figure (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FIGURES = (
    "store_p50_ms", "store_p95_ms", "store_per_s",
    "store_http_p50_ms", "store_http_p95_ms", "store_http_per_s",
    "recall_small_p50_ms", "recall_small_p95_ms", "query_small_p95_ms", "matches_small", "load_small_s",
    "recall_large_p50_ms", "recall_large_p95_ms", "query_large_p95_ms", "matches_large", "load_large_s",
    "store_large_p95_ms", "rebuild_per_s",
)
WITH_BASELINE = (
    "store_p50_ms", "store_p95_ms", "store_per_s", "store_http_p95_ms", "recall_small_p95_ms",
    "recall_large_p95_ms", "query_large_p95_ms", "rebuild_per_s",
)


@pytest.mark.slow
def test_quick_benchmark_reports_every_figure(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench.bench_core", "--quick", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    document = json.loads((tmp_path / "bench_core.json").read_text())
    figures = document["figures"]
    assert set(FIGURES) <= set(figures)
    for key in FIGURES:
        value = figures[key]["value"]
        assert isinstance(value, int | float) and value > 0, (key, value)
    for key in WITH_BASELINE:
        assert figures[key]["baseline"] > 0 and figures[key]["overhead"] > 0, key
    assert document["meta"]["quick"] is True
    assert document["raw"]["rebuild"]["events"] > 0
    svg = (tmp_path / "bench_core.svg").read_text()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "recall p95" in done.stdout and "overhead" in done.stdout
