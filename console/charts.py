"""Pictures drawn on the server as SVG geometry: the pass-rate trend of a framework."""

from __future__ import annotations

from dataclasses import dataclass

from console.words import percent
from engine.dashboard import TrendPoint

WIDTH, HEIGHT = 600, 160
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 8, 24


@dataclass(frozen=True)
class TrendChart:
    width: int
    height: int
    lines: list[str]
    """SVG `points` of each unbroken run of days with results."""
    dots: list[tuple[float, float]]
    """Days with results that stand alone (a line needs two)."""
    grid: list[tuple[float, str]]
    """y and label of the 0%, 50% and 100% grid lines."""
    first_label: str
    last_label: str
    summary: str
    """What the picture shows, in words (its accessible name)."""
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_bottom: int = HEIGHT - BOTTOM


def trend_chart(name: str, points: list[TrendPoint]) -> TrendChart:
    """The trend as polylines over a 0-100% axis, one x step per day."""
    span_x = WIDTH - LEFT - RIGHT
    span_y = HEIGHT - TOP - BOTTOM
    step = span_x / max(1, len(points) - 1)
    runs: list[list[tuple[float, float]]] = [[]]
    for i, point in enumerate(points):
        if point.rate is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((round(LEFT + i * step, 1), round(TOP + (1 - point.rate) * span_y, 1)))
    lines = [" ".join(f"{x},{y}" for x, y in run) for run in runs if len(run) > 1]
    dots = [run[0] for run in runs if len(run) == 1]
    grid = [(round(TOP + (1 - v) * span_y, 1), f"{int(v * 100)}%") for v in (1.0, 0.5, 0.0)]
    known = [p for p in points if p.rate is not None]
    if not known:
        summary = f"{name}: no control results in the last {len(points)} days yet."
    else:
        summary = (f"{name} pass rate over the last {len(points)} days (results of its "
                   f"checks passing): "
                   f"{percent(known[0].rate)} on {known[0].day:%d %b}, "
                   f"{percent(known[-1].rate)} on {known[-1].day:%d %b}.")
    first = f"{points[0].day:%d %b}" if points else ""
    last = f"{points[-1].day:%d %b}" if points else ""
    return TrendChart(WIDTH, HEIGHT, lines, dots, grid, first, last, summary)
