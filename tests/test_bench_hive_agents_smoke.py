"""The hive-scale benchmark runs end to end at small sizes: keys enrolled through the operator path, signed
requests verified, the nonce cache measured, and signed HTTP traffic against its unsigned same-run baseline
(no timing assertions: the machine is shared)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MEASURED = ("enroll_per_s", "key_lookups_per_s", "registry_disk_bytes_per_agent", "nonce_bytes_per_agent",
            "nonce_bytes_per_nonce")
WITH_BASELINE = ("verified_per_s", "e2e_ops_per_s", "store_p95_ms", "recall_p95_ms")


@pytest.mark.slow
def test_quick_hive_benchmark_reports_every_figure(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench.bench_hive_agents", "--quick", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    document = json.loads((tmp_path / "bench_hive_agents.json").read_text())
    meta, figures = document["meta"], document["figures"]
    assert meta["quick"] is True and meta["agents"] == 1000 and meta["pool"] == 100
    for key in MEASURED:
        assert figures[key]["value"] > 0, key
    for key in WITH_BASELINE:
        assert figures[key]["value"] > 0 and figures[key]["baseline"] > 0, key
    # Every signed request of the pool was accepted: none refused as unknown, forged or replayed.
    assert document["raw"]["signed"]["errors"] == 0 and document["raw"]["signed"]["ops"] > 0
    assert "signed requests verified/s" in done.stdout
