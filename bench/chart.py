"""A self-contained SVG chart of the figures: paired bars (ours vs baseline) with target markers.

Written by hand (no plotting library): one panel per group, each with its own linear scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path

from bench.report import Figure

__all__ = ["Panel", "render_svg", "write_svg"]

_WIDTH = 880
_LABEL_W = 230
_BAR_AREA = _WIDTH - _LABEL_W - 110
_ROW_H = 34
_BAR_H = 12
_OURS, _BASE, _TARGET = "#2f6db5", "#a7a7a7", "#c62828"


@dataclass(frozen=True)
class Panel:
    title: str
    figures: list[Figure]


def _text(x: float, y: float, content: str, *, size: int = 12, anchor: str = "start", weight: str = "normal",
          fill: str = "#222") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
            f'fill="{fill}">{escape(content)}</text>')


def _bar(x: float, y: float, width: float, fill: str, label: str) -> str:
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 1.0):.1f}" height="{_BAR_H}" fill="{fill}"/>'
            + _text(x + max(width, 1.0) + 4, y + _BAR_H - 2, label, size=10))


def _scale(figures: list[Figure]) -> float:
    values = [f.value for f in figures] + [f.baseline or 0 for f in figures] + [f.target or 0 for f in figures]
    return max(values) * 1.1 or 1.0


def _figure_row(f: Figure, y: float, top: float) -> list[str]:
    x0 = _LABEL_W
    per_px = _BAR_AREA / top
    out = [_text(x0 - 8, y + _BAR_H + 2, f.label, anchor="end"),
           _bar(x0, y, f.value * per_px, _OURS, f"{f.value:,.2f} {f.unit}")]
    if f.baseline is not None:
        out.append(_bar(x0, y + _BAR_H + 2, f.baseline * per_px, _BASE, f"{f.baseline:,.2f}"))
    if f.target is not None:
        tx = x0 + f.target * per_px
        out.append(f'<line x1="{tx:.1f}" y1="{y - 3:.1f}" x2="{tx:.1f}" y2="{y + 2 * _BAR_H + 5:.1f}" '
                   f'stroke="{_TARGET}" stroke-width="2" stroke-dasharray="4,3"/>')
    return out


def _panel(panel: Panel, y: float) -> tuple[list[str], float]:
    out = [_text(12, y + 16, panel.title, size=14, weight="bold")]
    y += 28
    top = _scale(panel.figures)
    for f in panel.figures:
        out.extend(_figure_row(f, y, top))
        y += _ROW_H
    return out, y + 10


def _legend(y: float) -> list[str]:
    items = [(_OURS, "ours (event-sourced)"), (_BASE, "baseline (plain SQLite + FTS5)")]
    out = []
    x = 12.0
    for colour, label in items:
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="12" height="12" fill="{colour}"/>')
        out.append(_text(x + 17, y + 11, label))
        x += 250
    out.append(f'<line x1="{x:.1f}" y1="{y + 6:.1f}" x2="{x + 14:.1f}" y2="{y + 6:.1f}" stroke="{_TARGET}" '
               'stroke-width="2" stroke-dasharray="4,3"/>')
    out.append(_text(x + 19, y + 11, "target"))
    return out


def render_svg(title: str, panels: list[Panel]) -> str:
    body = [_text(12, 24, title, size=16, weight="bold"), *_legend(36)]
    y = 60.0
    for panel in panels:
        rows, y = _panel(panel, y)
        body.extend(rows)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{y:.0f}" '
            f'viewBox="0 0 {_WIDTH} {y:.0f}" font-family="sans-serif">\n'
            f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n")


def write_svg(path: Path, title: str, panels: list[Panel]) -> None:
    path.write_text(render_svg(title, panels), encoding="utf-8")
