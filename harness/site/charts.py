"""Inline SVG charts of the leaderboard as data: every shape with ready-made attribute strings.

The template `_macros.html.j2` (macro `chart`) turns a Chart into an <svg>; nothing is drawn by script, so the
pages work from file:// and without JavaScript. Coordinates are fixed-decimal strings: byte-identical output.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.site.cells import as_dict, number

# Okabe-Ito colours (colour-blind safe, yellow left out: too faint on white); dashes tell apart sets past them.
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 3")


@dataclass(frozen=True)
class Shape:
    """One SVG primitive with ready-made attribute strings; `kind` picks the element in the template."""
    kind: str  # line | rect | polyline | text | circle (x, y = centre, width = radius)
    cls: str = ""
    x: str = ""
    y: str = ""
    x2: str = ""
    y2: str = ""
    width: str = ""
    height: str = ""
    points: str = ""
    stroke: str = ""
    dash: str = ""
    anchor: str = ""
    rotate: str = ""
    text: str = ""
    title: str = ""


@dataclass(frozen=True)
class Chart:
    label: str
    width: int
    height: int
    shapes: tuple[Shape, ...]


def _p(value: float) -> str:
    return f"{value:.2f}"


# Plot area of every chart: a unit square mapped to SIZE pixels, legend to the right.
LEFT, TOP, SIZE = 64, 16, 300
LEGEND_X = LEFT + SIZE + 24


def _sx(v: float) -> float:
    return LEFT + SIZE * v


def _sy(v: float, top: float = TOP, height: float = SIZE) -> float:
    return top + height * (1 - v)


def _unit_ticks(i: int) -> str:
    return f"{i / 5:g}"


def _frame(xlabel: str, ylabel: str, x_label_y: float, xtick=_unit_ticks, ytick=_unit_ticks) -> list[Shape]:
    """Grid, frame and axis labels; `xtick(i)`, `ytick(i)` label the i-th of 6 evenly spaced grid lines."""
    shapes = []
    for i in range(6):
        v = i / 5
        shapes += [Shape("line", "grid", _p(_sx(v)), _p(TOP), _p(_sx(v)), _p(TOP + SIZE)),
                   Shape("line", "grid", _p(LEFT), _p(_sy(v)), _p(LEFT + SIZE), _p(_sy(v))),
                   Shape("text", "tick", _p(_sx(v)), _p(TOP + SIZE + 16), anchor="middle", text=xtick(i)),
                   Shape("text", "tick", _p(LEFT - 8), _p(_sy(v) + 4), anchor="end", text=ytick(i))]
    shapes += [Shape("rect", "frame", _p(LEFT), _p(TOP), width=_p(SIZE), height=_p(SIZE)),
               Shape("text", "axis-label", _p(LEFT + SIZE / 2), _p(x_label_y), anchor="middle", text=xlabel),
               Shape("text", "axis-label", "0", "0", anchor="middle", text=ylabel,
                     rotate=f"translate(18 {_p(TOP + SIZE / 2)}) rotate(-90)")]
    return shapes


def _legend_line(i: int, text: str, stroke: str, dash: str, cls: str = "series") -> list[Shape]:
    y = TOP + 10 + 20 * i
    return [Shape("line", cls, _p(LEGEND_X), _p(y), _p(LEGEND_X + 24), _p(y), stroke=stroke, dash=dash),
            Shape("text", "legend", _p(LEGEND_X + 30), _p(y + 4), text=_shorten(text), title=text)]


def _legend_box(i: int, text: str, cls: str) -> list[Shape]:
    y = TOP + 10 + 20 * i
    return [Shape("rect", cls, _p(LEGEND_X + 4), _p(y - 6), width="16.00", height="12.00"),
            Shape("text", "legend", _p(LEGEND_X + 30), _p(y + 4), text=text)]


def _shorten(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _unit_values(values: object) -> list[float] | None:
    if not isinstance(values, list):
        return None
    numbers = [number(v) for v in values]
    return numbers if all(n is not None and -1e-9 <= n <= 1 + 1e-9 for n in numbers) else None


def roc_chart(roc: object) -> Chart | None:
    """ROC curves of every OOD set in one chart (OOD as positive); None when no curve is usable."""
    curves = []
    for name, curve in sorted(as_dict(roc).items()):
        fpr, tpr = _unit_values(as_dict(curve).get("fpr")), _unit_values(as_dict(curve).get("tpr"))
        if fpr and tpr and len(fpr) == len(tpr) >= 2:
            curves.append((name, fpr, tpr))
    if not curves:
        return None
    shapes = _frame("False positive rate (ID flagged as OOD)", "True positive rate (OOD detected)", TOP + SIZE + 40)
    shapes.append(Shape("line", "chance", _p(_sx(0)), _p(_sy(0)), _p(_sx(1)), _p(_sy(1))))
    for i, (name, fpr, tpr) in enumerate(curves):
        stroke, dash = COLORS[i % len(COLORS)], DASHES[i // len(COLORS) % len(DASHES)]
        points = " ".join(f"{_p(_sx(x))},{_p(_sy(y))}" for x, y in zip(fpr, tpr))
        shapes.append(Shape("polyline", "series", points=points, stroke=stroke, dash=dash, title=name))
        shapes += _legend_line(i, name, stroke, dash)
    shapes += _legend_line(len(curves), "chance", "", "", "chance")
    height = max(TOP + SIZE + 52, TOP + 20 * (len(curves) + 1) + 10)
    return Chart("ROC curves, OOD as positive", LEGEND_X + 200, height, tuple(shapes))


def reliability_chart(bins: object) -> Chart | None:
    """Accuracy per confidence bin with its gap to the bin's mean confidence, and a strip of bin counts."""
    usable = []
    for b in bins if isinstance(bins, list) else []:
        b = as_dict(b)
        lo, hi, count = number(b.get("lo")), number(b.get("hi")), b.get("count")
        if lo is None or hi is None or not 0 <= lo < hi <= 1 or not isinstance(count, int) or count < 0:
            continue
        usable.append((lo, hi, number(b.get("confidence")), number(b.get("accuracy")), count))
    if not usable:
        return None
    strip_top, strip_height = TOP + SIZE + 28, 48
    shapes = _frame("Confidence", "Accuracy", strip_top + strip_height + 36)
    shapes.append(Shape("line", "chance", _p(_sx(0)), _p(_sy(0)), _p(_sx(1)), _p(_sy(1))))
    top_count = max(c for *_, c in usable) or 1
    for lo, hi, conf, acc, count in usable:
        x, w = _p(_sx(lo) + 1), _p(SIZE * (hi - lo) - 2)
        tip = f"{lo:.2f}\u2013{hi:.2f}: {count} samples"
        if acc is not None:
            shapes.append(Shape("rect", "bar-acc", x, _p(_sy(acc)), width=w, height=_p(SIZE * acc),
                                title=f"{tip}, accuracy {acc:.3f}"))
            if conf is not None:
                shapes.append(Shape("rect", "bar-gap", x, _p(_sy(max(acc, conf))), width=w,
                                    height=_p(SIZE * abs(conf - acc)), title=f"{tip}, confidence {conf:.3f}"))
        h = strip_height * count / top_count
        shapes.append(Shape("rect", "bar-count", x, _p(strip_top + strip_height - h), width=w, height=_p(h),
                            title=tip))
    shapes += [Shape("line", "axis", _p(LEFT), _p(strip_top + strip_height), _p(LEFT + SIZE),
                     _p(strip_top + strip_height)),
               Shape("text", "tick", _p(LEFT - 8), _p(strip_top + 8), anchor="end", text=str(top_count)),
               Shape("text", "tick", _p(LEFT - 8), _p(strip_top + strip_height), anchor="end", text="0"),
               Shape("text", "tick", _p(LEFT + SIZE + 6), _p(strip_top + strip_height), text="samples")]
    shapes += (_legend_box(0, "Accuracy", "bar-acc") + _legend_box(1, "Gap to confidence", "bar-gap")
               + _legend_line(2, "Perfect calibration", "", "", "chance") + _legend_box(3, "Samples per bin",
                                                                                        "bar-count"))
    return Chart("Reliability diagram", LEGEND_X + 200, strip_top + strip_height + 48, tuple(shapes))


@dataclass(frozen=True)
class Point:
    """One model in a trade-off chart, in percent; `group` names its series (points of a group are joined)."""
    group: str
    label: str
    x: float
    y: float


def _span(values: list[float]) -> tuple[float, float]:
    """A range around the values, at least 1 point wide, with 5 % room on each side."""
    lo, hi = min(values), max(values)
    if hi - lo < 1.0:
        lo, hi = (lo + hi) / 2 - 0.5, (lo + hi) / 2 + 0.5
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


def tradeoff_chart(label: str, xlabel: str, ylabel: str, points: list[Point]) -> Chart | None:
    """Points in a data-scaled plot; each group a colour, a group of several points joined in the given order
    (the WiSE-FT alpha curve), every point labelled. None without points."""
    if not points:
        return None
    (x_lo, x_hi), (y_lo, y_hi) = _span([p.x for p in points]), _span([p.y for p in points])

    def ux(v: float) -> float:
        return (v - x_lo) / (x_hi - x_lo)

    def uy(v: float) -> float:
        return (v - y_lo) / (y_hi - y_lo)

    shapes = _frame(xlabel, ylabel, TOP + SIZE + 40, xtick=lambda i: f"{x_lo + (x_hi - x_lo) * i / 5:.1f}",
                    ytick=lambda i: f"{y_lo + (y_hi - y_lo) * i / 5:.1f}")
    groups = list(dict.fromkeys(p.group for p in points))
    for i, group in enumerate(groups):
        members, color = [p for p in points if p.group == group], COLORS[i % len(COLORS)]
        if len(members) > 1:
            shapes.append(Shape("polyline", "series", points=" ".join(
                f"{_p(_sx(ux(p.x)))},{_p(_sy(uy(p.y)))}" for p in members), stroke=color, title=group))
        for p in members:
            tip = f"{group} {p.label}: {xlabel} {p.x:.2f}, {ylabel} {p.y:.2f}"
            shapes += [Shape("circle", "point", _p(_sx(ux(p.x))), _p(_sy(uy(p.y))), width="5.00", stroke=color,
                             title=tip),
                       Shape("text", "point-label", _p(_sx(ux(p.x)) + 7), _p(_sy(uy(p.y)) - 7), text=p.label)]
        shapes += _legend_line(i, group, color, "")
    height = max(TOP + SIZE + 52, TOP + 20 * len(groups) + 10)
    return Chart(label, LEGEND_X + 200, height, tuple(shapes))
