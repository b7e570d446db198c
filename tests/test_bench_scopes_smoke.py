"""The scope-filter benchmark runs end to end at small sizes and reports every figure with its same-run
baseline (no timing assertions: the machine is shared)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIGURES = ("recall_p95_ms", "query_p95_ms", "hidden_p95_ms", "vectors_p95_ms")


@pytest.mark.slow
def test_quick_scope_benchmark_reports_every_figure(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench.bench_scopes", "--quick", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    document = json.loads((tmp_path / "bench_scopes.json").read_text())
    assert document["meta"]["quick"] is True and document["meta"]["namespaces"] == 1000
    for key in FIGURES:
        figure = document["figures"][key]
        assert figure["value"] > 0 and figure["baseline"] > 0 and figure["overhead"] > 0, key
    assert document["figures"]["recall_p95_ms"]["max_overhead"] == 1.2
    assert "recall p95, as_agent on" in done.stdout
