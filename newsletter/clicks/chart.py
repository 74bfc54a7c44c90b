"""A bar chart of an issue's clicks per comparison as plain SVG: drawn on the server, readable without JavaScript.

Each bar has its label and figure as text beside it, and the chart a title and a description that says every
figure, so a screen reader gets what the picture shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from newsletter.clicks.stats import Line

WIDTH, LABEL, BAR_H, GAP, TOP, VALUE = 640, 260, 18, 10, 8, 90
LABEL_CHARS = 38  # what fits in the label column at 12 px


def clicks_chart(lines: Sequence[Line], *, title: str = "Clicks per comparison", tracked: bool = False) -> str:
    """An accessible ``<svg>`` bar chart of ``lines`` (clicks, and unique readers when ``tracked``); "" when empty."""
    if not lines:
        return ""
    top = max(max(line.clicks for line in lines), 1)
    room = WIDTH - LABEL - VALUE
    height = TOP * 2 + len(lines) * (BAR_H + GAP)
    bars = "".join(_bar(i, line, top, room, tracked) for i, line in enumerate(lines))
    summary = "; ".join(f"{line.label}: {_figure(line, tracked)}" for line in lines) + "."
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="clicks-title clicks-desc" class="chart" id="clicks-chart">'
        f'<title id="clicks-title">{escape(title)}</title><desc id="clicks-desc">{escape(summary)}</desc>'
        f'<line x1="{LABEL}" y1="0" x2="{LABEL}" y2="{height}" stroke="#9ca3af"/>{bars}</svg>'
    )


def _bar(i: int, line: Line, top: int, room: int, tracked: bool) -> str:
    """One comparison's row: its label, its bar (at least a hairline, so a zero still shows) and its figure."""
    y = TOP + i * (BAR_H + GAP)
    width = max(room * line.clicks / top, 1.0)
    label = line.label if len(line.label) <= LABEL_CHARS else line.label[:LABEL_CHARS - 1] + "…"
    middle = y + BAR_H / 2 + 4
    return (f'<text x="{LABEL - 8}" y="{middle:.1f}" text-anchor="end" font-size="12" fill="currentColor">'
            f'{escape(label)}</text>'
            f'<rect x="{LABEL}" y="{y}" width="{width:.1f}" height="{BAR_H}" fill="#1d4ed8">'
            f'<title>{escape(line.label)}: {_figure(line, tracked)}</title></rect>'
            f'<text x="{LABEL + width + 6:.1f}" y="{middle:.1f}" font-size="12" fill="currentColor">'
            f'{_figure(line, tracked)}</text>')


def _figure(line: Line, tracked: bool) -> str:
    clicks = f"{line.clicks} click{'s' if line.clicks != 1 else ''}"
    return f"{clicks}, {line.unique} unique" if tracked else clicks
