"""An SVG chart of what one key breach exposes, written as plain text (no plotting library)."""

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

WIDTH, BAR_HEIGHT, GAP, LABEL_WIDTH, PANEL_GAP = 760, 22, 6, 230, 34
SHARED_COLOUR, ORG_COLOUR = "#c0392b", "#2471a3"
METRICS = (("orgs", "organizations exposed"), ("objects", "objects exposed"), ("bytes", "bytes"))


def exposure_chart_svg(rows: list[dict[str, Any]], title: str) -> str:
    """One panel per metric, one bar per row; rows are ``{"label", "shared", "orgs", "objects",
    "bytes"}`` and shared-key rows are drawn in red, org-key rows in blue."""
    panel_height = 24 + len(rows) * (BAR_HEIGHT + GAP)
    height = 48 + len(METRICS) * (panel_height + PANEL_GAP)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="12" y="26" font-size="16" font-weight="bold">{escape(title)}</text>',
    ]
    top = 48
    for metric, caption in METRICS:
        parts += _panel(rows, metric, caption, top)
        top += panel_height + PANEL_GAP
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_chart(path: Path, rows: list[dict[str, Any]], title: str) -> Path:
    if path.suffix.lower() != ".svg":
        raise ValueError(f"{path}: the chart is written as SVG; name it *.svg")
    path.write_text(exposure_chart_svg(rows, title), encoding="utf-8")
    return path


def _panel(rows: list[dict[str, Any]], metric: str, caption: str, top: int) -> list[str]:
    largest = max((float(r[metric]) for r in rows), default=0.0) or 1.0
    span = WIDTH - LABEL_WIDTH - 90
    parts = [f'<text x="12" y="{top + 14}" font-weight="bold">{escape(caption)}</text>']
    for index, row in enumerate(rows):
        y = top + 24 + index * (BAR_HEIGHT + GAP)
        length = max(1.0, span * float(row[metric]) / largest)
        colour = SHARED_COLOUR if row.get("shared") else ORG_COLOUR
        parts += [
            f'<text x="12" y="{y + 15}">{escape(str(row["label"]))}</text>',
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR_HEIGHT}" '
            f'fill="{colour}"/>',
            f'<text x="{LABEL_WIDTH + length + 6:.1f}" y="{y + 15}">{row[metric]:,}</text>',
        ]
    return parts
