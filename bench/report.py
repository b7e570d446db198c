"""Figures with their targets and baselines: the printed table and the JSON document."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Figure", "render_table", "to_json", "write_json"]


@dataclass(frozen=True)
class Figure:
    """One reported number. ``overhead`` is how many times worse than the baseline (1.0 = as good)."""

    key: str
    label: str
    unit: str
    value: float
    baseline: float | None = None
    higher_is_better: bool = False
    target: float | None = None
    max_overhead: float | None = None

    @property
    def overhead(self) -> float | None:
        if self.baseline is None or self.baseline <= 0 or self.value <= 0:
            return None
        return self.baseline / self.value if self.higher_is_better else self.value / self.baseline

    def meets_target(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    def meets_overhead(self) -> bool | None:
        if self.max_overhead is None or self.overhead is None:
            return None
        return self.overhead <= self.max_overhead

    @property
    def passed(self) -> bool | None:
        """None when the figure has no target (informational)."""
        checks = [c for c in (self.meets_target(), self.meets_overhead()) if c is not None]
        return all(checks) if checks else None

    def target_text(self) -> str:
        parts = []
        if self.target is not None:
            parts.append(f"{'≥' if self.higher_is_better else '≤'} {_num(self.target)} {self.unit}")
        if self.max_overhead is not None:
            parts.append(f"≤ {self.max_overhead:g}x base")
        return ", ".join(parts) or "—"


def _num(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _row(f: Figure) -> list[str]:
    result = {True: "PASS", False: "FAIL", None: "info"}[f.passed]
    return [f.label, f"{_num(f.value)} {f.unit}", "—" if f.baseline is None else f"{_num(f.baseline)} {f.unit}",
            "—" if f.overhead is None else f"{f.overhead:.2f}x", f.target_text(), result]


def _align(cells: list[str], widths: list[int]) -> list[str]:
    """The first column left-aligned, numbers right-aligned."""
    return [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]


def render_table(figures: list[Figure]) -> str:
    """A fixed-width table: figure, ours, baseline, overhead, target, PASS/FAIL/info."""
    header = ["figure", "ours", "baseline", "overhead", "target", "result"]
    rows = [header] + [_row(f) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(_align(cells, widths)) for cells in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def to_json(figures: list[Figure], meta: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "meta": meta,
        "figures": {f.key: {"label": f.label, "unit": f.unit, "value": f.value, "baseline": f.baseline,
                            "overhead": f.overhead, "target": f.target, "max_overhead": f.max_overhead,
                            "higher_is_better": f.higher_is_better, "passed": f.passed} for f in figures},
        "raw": raw,
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
