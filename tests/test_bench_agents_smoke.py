"""The ten-agents benchmark runs end to end in quick mode and reports every figure with its baseline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_agents_benchmark(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench.bench_agents", "--quick", "--seconds", "1.5",
                           "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    document = json.loads((tmp_path / "bench_agents.json").read_text())
    figures = document["figures"]
    assert set(figures) == {"agents_ops_per_s", *(f"{op}_{p}_ms" for op in ("store", "update", "recall")
                                                   for p in ("p50", "p95"))}
    for key, figure in figures.items():
        assert figure["value"] > 0 and figure["baseline"] > 0, key
    assert document["raw"]["on"]["mode"] == "enforce" and document["raw"]["off"]["mode"] == "off"
    assert document["raw"]["on"]["errors"] == 0 and document["raw"]["on"]["ops"] > 10
    assert "governance off" in done.stdout
