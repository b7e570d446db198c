"""The local-models benchmark runs end to end at small sizes and reports every figure for each model (mpnet
only where its optional weights are installed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.semantic.conftest import mpnet_installed

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_models_benchmark(tmp_path: Path) -> None:
    models = ["minilm", "mpnet"] if mpnet_installed() else ["minilm"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_models", "--quick", "--models", ",".join(models), "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((tmp_path / "bench_models.json").read_text())
    assert results["meta"]["quick"] is True
    names = {"minilm": "all-MiniLM-L6-v2", "mpnet": "all-mpnet-base-v2"}
    assert [m["model"] for m in results["models"]] == [names[m] for m in models]
    for m in results["models"]:
        assert 0 < m["query_p50_ms"] <= m["query_p95_ms"] and m["ingest_per_s"] > 0 and m["load_s"] > 0
        assert m["packages_mb"] > 50 and m["cache_mb"] > 50, "the weights and the built graph are counted"
