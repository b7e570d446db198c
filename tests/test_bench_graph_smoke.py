"""The graph benchmark runs end to end at small sizes and reports every figure (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIGURES = ("kg_query_d1_p95_ms", "kg_query_d3_p95_ms", "kg_query_d5_p95_ms", "kg_query_d3_as_of_p95_ms",
           "build_events_per_s")


@pytest.mark.slow
def test_quick_graph_benchmark_reports_every_figure(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench.bench_graph", "--quick", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    document = json.loads((tmp_path / "bench_graph.json").read_text())
    figures = document["figures"]
    assert set(FIGURES) == set(figures)
    for key in FIGURES:
        assert figures[key]["value"] > 0, key
    for key in FIGURES[:4]:
        assert figures[key]["baseline"] > 0 and figures[key]["overhead"] > 0, key
    assert document["meta"]["quick"] is True and document["raw"]["mean_rows"]["5"] > 0
