"""The apply benchmark runs end to end at small sizes on both paths (figures only, no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.bench_apply import PATHS, main, render


def test_quick_apply_benchmark_reports_both_paths(tmp_path: Path) -> None:
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "bench_apply.json").read_text())["results"]
    assert set(results) == {f"{path}/{batch}" for path in PATHS for batch in (1, 8)}
    for label, figures in results.items():
        assert figures["best_us"] > 0, label
        assert figures["median_us"] >= figures["best_us"], label


def test_table() -> None:
    table = render({"follower/8": {"best_us": 412.4, "median_us": 430.0, "runs": 3}})
    assert table.splitlines()[-1].split() == ["follower", "8", "412", "430"]
