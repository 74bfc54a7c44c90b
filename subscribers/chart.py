"""A line chart of subscribers over time as plain SVG: drawn on the server, readable without JavaScript."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 220, 56, 16, 16, 32


def subscriber_chart(points: Sequence[tuple[date, int]], *, title: str = "Active subscribers") -> str:
    """An accessible ``<svg>`` line chart of ``points`` (date, count), with axis labels and a title."""
    if not points:
        return ""
    counts = [count for _, count in points]
    top = max(max(counts), 1)
    span_x = max(len(points) - 1, 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        """The horizontal position of the ``i``-th point."""
        return LEFT + plot_w * i / span_x

    def y(count: int) -> float:
        """The vertical position of ``count``."""
        return TOP + plot_h * (1 - count / top)

    line = " ".join(f"{x(i):.1f},{y(c):.1f}" for i, c in enumerate(counts))
    first, last = points[0], points[-1]
    summary = f"{title}: {first[1]} on {first[0]:%d %b %Y}, {last[1]} on {last[0]:%d %b %Y}, peak {max(counts)}."
    dots = "".join(f'<circle cx="{x(i):.1f}" cy="{y(c):.1f}" r="2.5"><title>{d:%d %b %Y}: {c}</title></circle>'
                   for i, (d, c) in enumerate(points))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title chart-desc" class="chart">'
        f'<title id="chart-title">{escape(title)}</title><desc id="chart-desc">{escape(summary)}</desc>'
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#9ca3af"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#9ca3af"/>'
        f'<text x="{LEFT - 8}" y="{TOP + 4}" text-anchor="end" font-size="12" fill="currentColor">{top}</text>'
        f'<text x="{LEFT - 8}" y="{TOP + plot_h}" text-anchor="end" font-size="12" fill="currentColor">0</text>'
        f'<text x="{LEFT}" y="{HEIGHT - 8}" font-size="12" fill="currentColor">{first[0]:%d %b %Y}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end" font-size="12" fill="currentColor">'
        f'{last[0]:%d %b %Y}</text>'
        f'<polyline points="{line}" fill="none" stroke="#1d4ed8" stroke-width="2.5"/>'
        f'<g fill="#1d4ed8">{dots}</g></svg>'
    )
