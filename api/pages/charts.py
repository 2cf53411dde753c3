"""The SLA dashboard's charts, drawn on the server as SVG with matplotlib (no script on the page: the page keeps
its strict CSP and shows them with <img>). Text stays text (`svg.fonttype: none`), so Chinese labels are set in the
reader's own fonts; names from the ledger are never read as mathtext (`text.parse_math: False`)."""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Sequence
from typing import Any, cast

_FONTS = ["Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "Noto Sans", "DejaVu Sans"]
_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "chainproof",  # ids inside the SVG do not change from one drawing to the next
    "font.family": "sans-serif",
    "font.sans-serif": _FONTS,
    "font.size": 10,
    "text.parse_math": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_OK, _BAD, _INK, _MUTED = "#1a7f37", "#cf222e", "#1f2328", "#59636e"


_DRAWING = threading.Lock()
"""matplotlib's settings are global: a chart drawn while another thread leaves its rc_context came out with its
text as paths (svg.fonttype back to its default). The browser asks for a page's three charts at once."""


def _svg(draw: Any, size: tuple[float, float]) -> bytes:
    import matplotlib
    from matplotlib.figure import Figure

    with _DRAWING, matplotlib.rc_context(cast(Any, _STYLE)):
        figure = Figure(figsize=size, layout="constrained")
        draw(figure.subplots())
        out = io.BytesIO()
        with warnings.catch_warnings():  # glyphs the server's fonts lack: the reader's fonts draw them
            warnings.simplefilter("ignore")
            figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def on_time_by_week(weeks: Sequence[str], rates: Sequence[float | None], title: str, empty: str) -> bytes:
    """On-time rate per ISO week; a week with nothing due is left blank and marked."""

    def draw(ax: Any) -> None:
        if not _titled(ax, title, empty, bool(weeks)):
            return
        values = [0.0 if r is None else 100 * r for r in rates]
        bars = ax.bar(range(len(weeks)), values, color=[_colour(r) for r in rates])
        for bar, rate in zip(bars, rates, strict=True):
            label = "–" if rate is None else f"{100 * rate:.0f}%"
            ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                        fontsize=8, color=_INK)  # fmt: skip
        ax.set_xticks(range(len(weeks)), [w.split("-")[1] if "-" in w else w for w in weeks], rotation=0)
        ax.set_ylim(0, 110)
        ax.set_ylabel("%")

    return _svg(draw, (6.4, 2.8))


def _titled(ax: Any, title: str, empty: str, has_data: bool) -> bool:
    """Title the chart; without data, say so in its middle instead of drawing empty axes. Whether to draw on."""
    ax.set_title(title, loc="left", color=_INK)
    if not has_data:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes, color=_MUTED)
        ax.set_axis_off()
    return has_data


def _colour(rate: float | None) -> str:
    """Green from 95% on time, red under 80%, amber between; grey for a week with nothing due."""
    if rate is None:
        return _MUTED
    return _OK if rate >= 0.95 else _BAD if rate < 0.8 else "#9a6700"


def lead_time_histogram(hours: Sequence[float], marks: dict[str, float], title: str, axis: str, empty: str) -> bytes:
    """How long deliveries took (placed to delivered, hours), with the percentiles marked."""

    def draw(ax: Any) -> None:
        if not _titled(ax, title, empty, bool(hours)):
            return
        ax.hist(hours, bins=min(30, max(5, len(hours) // 5)), color="#4f7cac")
        for name, value in marks.items():
            ax.axvline(value, color=_BAD if name != "p50" else _INK, linestyle="--", linewidth=1)
            ax.annotate(name, (value, 1), xycoords=("data", "axes fraction"), ha="left", va="top", fontsize=8)
        ax.set_xlabel(axis)

    return _svg(draw, (6.4, 2.8))


def slowest_custody(holders: Sequence[str], p50_hours: Sequence[float], title: str, axis: str, empty: str) -> bytes:
    """The custodians who hold shipments longest (median hours held), slowest on top."""

    def draw(ax: Any) -> None:
        if not _titled(ax, title, empty, bool(holders)):
            return
        names = [h if len(h) <= 28 else h[:27] + "…" for h in holders]
        ax.barh(range(len(names)), p50_hours, color="#4f7cac")
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        ax.set_xlabel(axis)

    return _svg(draw, (6.4, 0.6 + 0.32 * max(1, len(holders))))
