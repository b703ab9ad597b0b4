"""Draw DVC's plots as static SVG in one HTML page: no JavaScript, no network.

`dvc plots diff <revs> --json` gives, per plot, the filled Vega-Lite spec of our templates
(.dvc/plots/): the x and y fields and scales, the mark (line, point, or a curve with its threshold
point), and the rows of every revision tagged ``rev`` (and ``field`` when a plot has several y
columns). This module reads just those parts and draws them: one colour per revision, named in the
legend, and one dash pattern (lines) or marker shape (points) per y column.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

COLOURS = ["#945dd6", "#13adc7", "#f46837", "#48bb78", "#d1495b", "#6c757d", "#edae49", "#1d3557"]
DASHES = ["", "8 4", "2 3", "10 3 2 3"]
SHAPES = ["circle", "square", "triangle", "cross"]
MARGIN = {"left": 64, "right": 170, "top": 34, "bottom": 44}


@dataclass
class Axis:
    """One axis of a plot: its title, its scale (linear or log) and its data range."""

    title: str
    log: bool = False
    low: float = math.inf
    high: float = -math.inf
    domain: Sequence[float] | None = None

    def fit(self, values: Sequence[float]) -> None:
        if self.domain:
            self.low, self.high = self.domain
            return
        usable = [v for v in values if not self.log or v > 0]
        self.low, self.high = (min(usable), max(usable)) if usable else (1.0, 10.0)
        if self.high == self.low:
            self.low, self.high = (self.low / 2, self.high * 2) if self.log else (self.low - 1, self.high + 1)

    def unit(self, value: float) -> float:
        """``value``'s position on the axis, 0 at ``low`` and 1 at ``high``."""
        if self.log:
            return (math.log10(value) - math.log10(self.low)) / (math.log10(self.high) - math.log10(self.low))
        return (value - self.low) / (self.high - self.low)

    def ticks(self) -> list[float]:
        if self.log:
            first, last = math.floor(math.log10(self.low)), math.ceil(math.log10(self.high))
            step = max(1, math.ceil((last - first) / 6))
            return [10.0**e for e in range(first, last + 1, step) if self.low <= 10.0**e <= self.high]
        raw = (self.high - self.low) / 5
        step = 10 ** math.floor(math.log10(raw))
        step *= next(m for m in (1, 2, 2.5, 5, 10) if step * m >= raw)
        start = math.ceil(self.low / step) * step
        return [start + i * step for i in range(int((self.high - start) / step + 1e-9) + 1)]


@dataclass
class Plot:
    """A plot's drawing instructions, read from DVC's filled Vega-Lite spec."""

    title: str
    x: Axis
    y: Axis
    mark: str  # "line" or "point"
    step: bool = False  # a step-after line (ROC, precision-recall)
    width: int = 420
    height: int = 300
    # {(revision, y column or ""): [(x, y), ...]}, in the data's order; the highlighted points apart.
    series: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    points: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


def _title(spec: dict) -> str:
    title = spec.get("title", "")
    return title.get("text", "") if isinstance(title, dict) else str(title)


def _axis(encoding: dict) -> Axis:
    scale = encoding.get("scale", {})
    return Axis(
        encoding.get("title") or encoding["field"], scale.get("type") == "log", domain=scale.get("domain")
    )


def read_spec(spec: dict) -> Plot:
    """The Plot of one DVC Vega-Lite spec (``content`` of `dvc plots diff --json`)."""
    encoding = spec["encoding"]
    mark = spec.get("mark") or spec["layer"][0]["mark"]
    mark = {"type": mark} if isinstance(mark, str) else mark
    plot = Plot(
        _title(spec),
        _axis(encoding["x"]),
        _axis(encoding["y"]),
        "point" if mark["type"] == "point" else "line",
        step=mark.get("interpolate") == "step-after",
        width=int(spec.get("width", 420)),
        height=int(spec.get("height", 300)),
    )
    x_field, y_field = encoding["x"]["field"], encoding["y"]["field"]
    for row in spec["data"]["values"]:
        try:
            xy = (float(row[x_field]), float(row[y_field]))
        except (KeyError, TypeError, ValueError):
            continue  # an empty cell: nothing to draw
        rev = str(row.get("rev", "workspace"))
        if str(row.get("point", "0")) == "1":
            plot.points.setdefault(rev, []).append(xy)
        else:
            plot.series.setdefault((rev, str(row.get("field", ""))), []).append(xy)
    everything = [xy for xys in (*plot.series.values(), *plot.points.values()) for xy in xys]
    plot.x.fit([x for x, _ in everything])
    plot.y.fit([y for _, y in everything])
    return plot


def _fmt(value: float) -> str:
    return f"{value:g}"


def _marker(shape: str, x: float, y: float, colour: str, size: float = 3.0) -> str:
    if shape == "square":
        side = 2 * size
        return f'<rect x="{x - size:.1f}" y="{y - size:.1f}" width="{side}" height="{side}" fill="{colour}"/>'
    if shape == "triangle":
        pts = f"{x:.1f},{y - size:.1f} {x - size:.1f},{y + size:.1f} {x + size:.1f},{y + size:.1f}"
        return f'<polygon points="{pts}" fill="{colour}"/>'
    if shape == "cross":
        return (
            f'<path d="M{x - size:.1f},{y - size:.1f}L{x + size:.1f},{y + size:.1f}M{x - size:.1f},'
            f'{y + size:.1f}L{x + size:.1f},{y - size:.1f}" stroke="{colour}" stroke-width="1.5"/>'
        )
    if shape == "diamond":
        pts = f"{x:.1f},{y - size:.1f} {x + size:.1f},{y:.1f} {x:.1f},{y + size:.1f} {x - size:.1f},{y:.1f}"
        return f'<polygon points="{pts}" fill="{colour}" stroke="#222" stroke-width="0.8"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size}" fill="{colour}" fill-opacity="0.6"/>'


class Canvas:
    """Maps data to pixels inside a plot's frame."""

    def __init__(self, plot: Plot) -> None:
        self.plot = plot

    def xy(self, x: float, y: float) -> tuple[float, float] | None:
        p = self.plot
        if (p.x.log and x <= 0) or (p.y.log and y <= 0):
            return None  # off a log scale
        return (
            MARGIN["left"] + p.x.unit(x) * p.width,
            MARGIN["top"] + (1 - p.y.unit(y)) * p.height,
        )

    def axes(self) -> list[str]:
        p, left, top = self.plot, MARGIN["left"], MARGIN["top"]
        bottom = top + p.height
        out = [
            f'<rect x="{left}" y="{top}" width="{p.width}" height="{p.height}" fill="none" stroke="#888"/>'
        ]
        for tick in p.x.ticks():
            x = left + p.x.unit(tick) * p.width
            out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#eee"/>')
            out.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{_fmt(tick)}</text>')
        for tick in p.y.ticks():
            y = top + (1 - p.y.unit(tick)) * p.height
            out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + p.width}" y2="{y:.1f}" stroke="#eee"/>')
            out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>')
        out.append(
            f'<text x="{left + p.width / 2}" y="{bottom + 36}" text-anchor="middle">'
            f"{html.escape(p.x.title)}</text>"
        )
        out.append(
            f'<text transform="translate(14,{top + p.height / 2}) rotate(-90)" text-anchor="middle">'
            f"{html.escape(p.y.title)}</text>"
        )
        out.append(
            f'<text x="{left + p.width / 2}" y="20" text-anchor="middle" font-weight="bold">'
            f"{html.escape(p.title)}</text>"
        )
        return out


def _line(pixels: list[tuple[float, float]], step: bool) -> str:
    if step:
        stepped = [pixels[0]]
        for x, y in pixels[1:]:
            stepped += [(x, stepped[-1][1]), (x, y)]
        pixels = stepped
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in pixels)


def draw(plot: Plot) -> str:
    """The SVG of one plot: axes, a series per (revision, y column), a legend per revision."""
    canvas = Canvas(plot)
    revisions = list(dict.fromkeys([rev for rev, _ in plot.series] + list(plot.points)))
    columns = list(dict.fromkeys(column for _, column in plot.series))
    colour = {rev: COLOURS[i % len(COLOURS)] for i, rev in enumerate(revisions)}
    out = canvas.axes()
    for (rev, column), xys in plot.series.items():
        pixels = [p for p in (canvas.xy(x, y) for x, y in xys) if p]
        if not pixels:
            continue
        style = columns.index(column)
        if plot.mark == "point":
            out += [_marker(SHAPES[style % len(SHAPES)], x, y, colour[rev]) for x, y in pixels]
            continue
        dash = DASHES[style % len(DASHES)]
        out.append(
            f'<polyline points="{_line(pixels, plot.step)}" fill="none" stroke="{colour[rev]}" '
            f'stroke-width="1.6"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
        )
    for rev, xys in plot.points.items():
        out += [_marker("diamond", *p, colour[rev], size=6) for p in (canvas.xy(x, y) for x, y in xys) if p]
    out += _legend(plot, revisions, columns, colour)
    width = MARGIN["left"] + plot.width + MARGIN["right"]
    height = MARGIN["top"] + plot.height + MARGIN["bottom"]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">\n' + "\n".join(out) + "\n</svg>"
    )


def _legend(plot: Plot, revisions: list[str], columns: list[str], colour: dict[str, str]) -> list[str]:
    x, y = MARGIN["left"] + plot.width + 16, MARGIN["top"] + 6
    out = [f'<text x="{x}" y="{y}" font-weight="bold">revision</text>']
    for rev in revisions:
        y += 18
        out.append(f'<rect x="{x}" y="{y - 9}" width="14" height="10" fill="{colour[rev]}"/>')
        out.append(f'<text x="{x + 20}" y="{y}" class="revision">{html.escape(rev)}</text>')
    if len(columns) > 1:
        y += 26
        out.append(f'<text x="{x}" y="{y}" font-weight="bold">column</text>')
        for i, column in enumerate(columns):
            y += 18
            if plot.mark == "point":
                out.append(_marker(SHAPES[i % len(SHAPES)], x + 7, y - 4, "#444"))
            else:
                dash = DASHES[i % len(DASHES)]
                out.append(
                    f'<line x1="{x}" y1="{y - 4}" x2="{x + 14}" y2="{y - 4}" stroke="#444" stroke-width="1.6"'
                    + (f' stroke-dasharray="{dash}"' if dash else "")
                    + "/>"
                )
            out.append(f'<text x="{x + 20}" y="{y}">{html.escape(column)}</text>')
    if plot.points:
        y += 26
        out.append(_marker("diamond", x + 7, y - 4, "#bbb", size=5))
        out.append(f'<text x="{x + 20}" y="{y}">chosen threshold</text>')
    return out


def page(specs: dict[str, dict], heading: str) -> str:
    """One HTML page with every plot ({name: spec}) drawn as inline SVG, needing no network."""
    figures = "\n".join(
        f'<figure id="{html.escape(name)}">\n{draw(read_spec(spec))}\n</figure>'
        for name, spec in specs.items()
    )
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(heading)}</title>\n</head>\n<body>\n<h1>{html.escape(heading)}</h1>\n"
        f"{figures}\n</body>\n</html>\n"
    )
