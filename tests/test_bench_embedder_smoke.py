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
    assert list(settings) == ["local", "remote", "remote +50 ms", "remote +150 ms"]
    for s in settings.values():
        assert s["median"]["bulk_per_s"] > 0 and s["recall_modes"] == ["hybrid"] and len(s["rounds"]) == 1, s
    assert settings["remote +150 ms"]["median"]["store_p50"] >= 150 > settings["remote"]["median"]["store_p50"]
    assert settings["remote +50 ms"]["median"]["recall_p50"] >= 50
    assert results["ratio_remote_50ms_vs_local"] > 0
    assert "bulk ingest ratio remote +50 ms / local (medians of 1 rounds)" in done.stdout
