"""Pictures drawn on the server as SVG geometry: the pass-rate trend of a framework and the
period strip of a control over a Type II audit's period."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from console.words import percent
from engine.dashboard import TrendPoint
from engine.period import Span, clip, merge, subtract

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


# --- the period strip of a Type II audit ---------------------------------------------------

STRIP_WIDTH, STRIP_HEIGHT, STRIP_BAR = 600, 44, 26
MIN_SEGMENT = 2.0
"""Narrower segments (a two-hour gap in half a year) are drawn this wide, so they are seen."""
SEGMENT_WORDS = {"operating": "Operating (fresh and passing)",
                 "exception": "Exception (failing)",
                 "untested": "Fresh, but not passing (not yet tested, or an error)",
                 "gap": "Gap (no fresh result)"}


@dataclass(frozen=True)
class StripSegment:
    kind: str
    """operating, exception, untested or gap (each its own pattern as well as colour)."""
    span: Span
    x: float
    width: float
    """Drawn width (at least MIN_SEGMENT)."""
    label: str


@dataclass(frozen=True)
class PeriodStrip:
    width: int
    height: int
    bar: int
    segments: list[StripSegment]
    ticks: list[tuple[float, str]]
    """x and label of the first day of each month inside the period."""
    summary: str
    """What the strip shows, in words (its accessible name)."""


def strip_segments(period: Span, exceptions: Iterable[Span], gaps: Iterable[Span],
                   passing: Iterable[Span]) -> list[tuple[str, Span]]:
    """The period cut into gaps (no fresh result), exceptions (failing, where not a gap),
    operating time (passing, where not a gap) and the rest (fresh, neither), in order."""
    gap = clip(merge(gaps), period)
    failing = subtract(clip(merge(exceptions), period), gap)
    operating = subtract(clip(merge(passing), period), gap + failing)
    untested = subtract([period], gap + failing + operating)
    return sorted([("gap", s) for s in gap] + [("exception", s) for s in failing]
                  + [("operating", s) for s in operating]
                  + [("untested", s) for s in untested], key=lambda p: p[1].start)


def period_strip(period: Span, exceptions: Iterable[Span], gaps: Iterable[Span],
                 passing: Iterable[Span], summary: str) -> PeriodStrip:
    """The period as a horizontal strip, one x unit per the same share of time."""
    whole = max(period.length.total_seconds(), 1.0)

    def x_of(at: datetime) -> float:
        return round((at - period.start).total_seconds() / whole * STRIP_WIDTH, 2)

    segments = [StripSegment(kind, span, x_of(span.start),
                             max(round(x_of(span.end) - x_of(span.start), 2), MIN_SEGMENT),
                             f"{SEGMENT_WORDS[kind]}: {_when(span.start)} to {_when(span.end)}")
                for kind, span in strip_segments(period, exceptions, gaps, passing)]
    ticks = []
    month = date(period.start.year, period.start.month, 1)
    while True:
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        at = datetime.combine(month, datetime.min.time(), UTC)
        if at >= period.end:
            break
        ticks.append((x_of(at), f"{month:%b}"))
    return PeriodStrip(STRIP_WIDTH, STRIP_HEIGHT, STRIP_BAR, segments, ticks, summary)


def _when(at: datetime) -> str:
    return f"{at:%-d %b %Y %H:%M} UTC"
