"""The embedder benchmark runs end to end at small sizes: every setting stores with vectors and recalls in hybrid
mode, and the delaying proxy really adds its latency (a single store through +150 ms takes at least that)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_embedder_benchmark(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_embedder", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((tmp_path / "bench_embedder.json").read_text())
    assert results["meta"]["quick"] is True
    settings = {s["name"]: s for s in results["settings"]}
    assert list(settings) == ["local", "remote", "remote +50 ms", "remote +150 ms", "local, again"]
    for s in settings.values():
        assert s["bulk_per_s"] > 0 and s["recall_modes"] == ["hybrid"], s
    assert settings["remote +150 ms"]["store"]["p50_ms"] >= 150 > settings["remote"]["store"]["p50_ms"]
    assert settings["remote +50 ms"]["recall"]["p50_ms"] >= 50
    assert results["ratio_remote_50ms_vs_local"] > 0
    assert "bulk ingest ratio remote +50 ms / local (mean of both local runs)" in done.stdout
