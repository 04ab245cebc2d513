"""One saturation sheet for every domain: curves along α as a picture, a long CSV and JSON.

Each curve is one item (a molecule, a context, an image); each panel one quantity along the
path (the score, the gradient sum, a probability). Lines get 10 colours × 4 dash styles, so
up to 40 curves are told apart, and the legend names them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from igkit.io.records import write_csv, write_json

_DASHES = ("-", "--", "-.", ":")
#: curves a legend names; beyond this, styles repeat and the legend is left out (the CSV names all)
LEGEND_LIMIT = 40


@dataclass
class Curve:
    """One item's values along α: ``values[panel key]``; ``fields`` identify it in the CSV."""

    label: str
    values: dict[str, Sequence[float]]
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Panel:
    """One quantity along the path: the key of :attr:`Curve.values`, its axis label and title."""

    key: str
    ylabel: str
    title: str = ""


def write_saturation(out_dir: Path, alpha: Sequence[float], curves: Sequence[Curve], panels: Sequence[Panel],
                     *, xlabel: str, legend_title: str, document: dict[str, Any], name: str = "saturation",
                     dpi: int = 120) -> list[Path]:
    """``NAME.png`` (a panel per quantity, a line per curve), ``NAME.csv`` (a row per curve and α:
    the curve's fields, ``alpha``, one column per panel) and ``NAME.json`` (``document``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    alpha = [float(a) for a in alpha]
    fig = Figure(figsize=(5.2 * len(panels) + 2.4, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        for k, curve in enumerate(curves):
            ax.plot(alpha, [float(v) for v in curve.values[panel.key]], color=f"C{k % 10}",
                    linestyle=_DASHES[(k // 10) % len(_DASHES)], linewidth=1.1, label=curve.label[:32])
        ax.set(xlabel=xlabel, ylabel=panel.ylabel, xlim=(0, 1))
        ax.set_title(panel.title, fontsize=10, wrap=True)
        ax.grid(alpha=0.3)
    if len(curves) <= LEGEND_LIMIT:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right upper", fontsize=6.5, title=legend_title,
                   title_fontsize=7, ncols=1 + len(curves) // 21, frameon=False)
    png = out_dir / f"{name}.png"
    fig.savefig(png, dpi=dpi)
    field_names = list(curves[0].fields) if curves else []
    table = write_csv(out_dir / f"{name}.csv", [*field_names, "alpha", *(p.key for p in panels)],
                      ([*c.fields.values(), round(a, 6), *(float(c.values[p.key][i]) for p in panels)]
                       for c in curves for i, a in enumerate(alpha)))
    return [png, table, write_json(out_dir / f"{name}.json", document)]
