"""The Postgres benchmark runs end to end at small sizes and reports every figure for both backends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.cluster import find_embedded_postgres

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_postgres_benchmark_reports_both_backends(tmp_path: Path) -> None:
    if find_embedded_postgres() is None:
        pytest.skip("embedded-postgres not installed")
    done = subprocess.run([sys.executable, "-m", "bench.bench_postgres", "--quick", "--size", "500",
                           "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    figures = json.loads((tmp_path / "bench_postgres.json").read_text())["figures"]
    assert figures["rebuild_events"] == 1000
    for key in ("keyword_ms", "semantic_ms", "hybrid_ms", "vector_ms", "store_ms"):
        for backend in ("sqlite", "postgres"):
            assert figures[key][backend]["p95_ms"] > 0, (key, backend)
    for backend in ("sqlite", "postgres"):
        assert figures["rebuild_per_s"][backend] > 0
        assert 0.5 <= figures["vector_recall_at_10"][backend] <= 1.0
