"""Inline SVG plots for report.html: a histogram and horizontal bars, no scripts, no external files."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from ragkit.evals.metrics import fmt


def histogram_svg(
    values: Sequence[float],
    *,
    bins: int = 10,
    lo: float | None = None,
    hi: float | None = None,
    xlabel: str = "",
    marker: float | None = None,
    width: int = 420,
    height: int = 180,
) -> str:
    """An inline SVG histogram of the values; `marker` draws a vertical line (a threshold)."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return "<p><em>no values</em></p>"
    lo = min(vals) if lo is None else lo
    hi = max(vals) if hi is None else hi
    if hi <= lo:
        hi = lo + 1.0
    counts = [0] * bins
    for v in vals:
        counts[min(bins - 1, max(0, int((v - lo) / (hi - lo) * bins)))] += 1
    left, bottom, top = 36, 30, 10
    pw, ph = width - left - 10, height - bottom - top
    bw = pw / bins
    peak = max(counts)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    parts.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#555"/>')
    for i, c in enumerate(counts):
        h = ph * c / peak if peak else 0
        x = left + i * bw
        label = f"{lo + i * (hi - lo) / bins:.2f}-{lo + (i + 1) * (hi - lo) / bins:.2f}: {c}"
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{top + ph - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" fill="#4a78b5">'
            f"<title>{label}</title></rect>"
        )
        if c:
            parts.append(
                f'<text x="{x + bw / 2:.1f}" y="{top + ph - h - 2:.1f}" font-size="10" text-anchor="middle">{c}</text>'
            )
    parts.append(f'<text x="{left}" y="{height - 14}" font-size="10">{lo:.2f}</text>')
    parts.append(f'<text x="{left + pw}" y="{height - 14}" font-size="10" text-anchor="end">{hi:.2f}</text>')
    parts.append(
        f'<text x="{left + pw / 2}" y="{height - 2}" font-size="11" text-anchor="middle">{html.escape(xlabel)}</text>'
    )
    parts.append(f'<text x="4" y="{top + 10}" font-size="10">n={len(vals)}</text>')
    if marker is not None and lo <= marker <= hi:
        mx = left + pw * (marker - lo) / (hi - lo)
        parts.append(
            f'<line x1="{mx:.1f}" y1="{top}" x2="{mx:.1f}" y2="{top + ph}" stroke="#c0392b" '
            f'stroke-dasharray="4 3"><title>threshold {marker:.3f}</title></line>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(labels: Sequence[str], values: Sequence[float | None], *, width: int = 420) -> str:
    """Horizontal bars for values in [0, 1] (per-category scores)."""
    row, left = 22, 150
    height = row * len(labels) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = 5 + i * row
        parts.append(
            f'<text x="{left - 6}" y="{y + 14}" font-size="11" text-anchor="end">{html.escape(label[:24])}</text>'
        )
        w = (width - left - 50) * (v or 0.0)
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="#4a78b5"/>')
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 14}" font-size="11">{fmt(v)}</text>')
    parts.append("</svg>")
    return "".join(parts)
