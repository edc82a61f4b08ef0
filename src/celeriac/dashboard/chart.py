"""The overview's chart, drawn on the server as SVG: no chart library, no script, no CDN.

Only numbers and times this module formats reach the markup, so there is nothing to escape;
colours come from classes in the stylesheet (the CSP forbids inline styles).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from markupsafe import Markup

WIDTH, HEIGHT = 720, 180
LEFT, BOTTOM, TOP = 36, 20, 8


@dataclass(frozen=True)
class Bucket:
    start: float       # epoch seconds
    succeeded: int
    failed: int


def outcome_bars(buckets: list[Bucket]) -> Markup:
    """Stacked bars, succeeded under failed, one per bucket, with a y scale and a few times."""
    plot_w, plot_h = WIDTH - LEFT, HEIGHT - BOTTOM - TOP
    peak = max([b.succeeded + b.failed for b in buckets] + [1])
    scale = _nice(peak)
    step = plot_w / max(len(buckets), 1)
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
             f'aria-label="Tasks succeeded and failed per minute">']
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="axis" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{scale * fraction:g}</text>')
    for i, b in enumerate(buckets):
        x = LEFT + i * step + 1
        w = max(step - 2, 1)
        ok_h = plot_h * b.succeeded / scale
        bad_h = plot_h * b.failed / scale
        label = f"{time.strftime('%H:%M', time.localtime(b.start))}: {b.succeeded} succeeded, {b.failed} failed"
        parts.append(f'<g><title>{label}</title>')
        if b.succeeded:
            parts.append(f'<rect class="ok" x="{x:.1f}" y="{TOP + plot_h - ok_h:.1f}" width="{w:.1f}" '
                         f'height="{ok_h:.1f}"/>')
        if b.failed:
            parts.append(f'<rect class="bad" x="{x:.1f}" y="{TOP + plot_h - ok_h - bad_h:.1f}" width="{w:.1f}" '
                         f'height="{bad_h:.1f}"/>')
        parts.append("</g>")
        if i % 10 == 0 or i == len(buckets) - 1:
            last = i == len(buckets) - 1  # anchored at its end, so the right edge does not cut it
            parts.append(f'<text class="axis" x="{x + w if last else x + w / 2:.1f}" y="{HEIGHT - 4}" '
                         f'text-anchor="{"end" if last else "middle"}">'
                         f"{time.strftime('%H:%M', time.localtime(b.start))}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _nice(peak: int) -> float:
    """The smallest of 1, 2 or 5 times 10^k at or above ``peak``: a scale whose halves read well."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if factor * magnitude >= peak:
                return float(factor * magnitude)
        magnitude *= 10
