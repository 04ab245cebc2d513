"""Charts and picture panels (matplotlib's Agg canvas, no pyplot state): Figure 4/6 panels,
saturation curves (Figures 2 and 12), the interior-gradient trend (Figure 3) and AOPC (Figure 5)."""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from igkit.records import write_bytes

from .records import Provenance

#: above this many lines a legend hides the data; lines are then left unlabelled
MAX_LEGEND_LINES = 10


@dataclass
class Cell:
    """One panel of a picture row: a picture, or text (label and score) when ``image`` is None."""

    title: str
    image: np.ndarray | None = None
    text: str = ""


@dataclass
class Line:
    label: str
    x: Sequence[float]
    y: Sequence[float]


@dataclass
class Panel:
    title: str
    xlabel: str
    ylabel: str
    lines: list[Line] = field(default_factory=list)


def picture_row(cells: Sequence[Cell], path: Path, title: str, made_by: Provenance) -> Path:
    """Pictures and text side by side (Figure 4: original | label and score | IG | gradients)."""
    fig = Figure(figsize=(3.0 * len(cells), 3.3))
    FigureCanvasAgg(fig)
    for i, cell in enumerate(cells):
        ax = fig.add_subplot(1, len(cells), i + 1)
        ax.set_title(cell.title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if cell.image is not None:
            ax.imshow(cell.image)
        else:
            ax.text(0.5, 0.5, cell.text, ha="center", va="center", fontsize=10, wrap=True,
                    transform=ax.transAxes)
            for spine in ax.spines.values():
                spine.set_visible(False)
    fig.suptitle(made_by.mark(title), fontsize=11)
    _margins(fig, left=0.1, right=0.1, bottom=0.1, top=0.75)
    return _save(fig, path, made_by)


def line_panels(panels: Sequence[Panel], path: Path, title: str, made_by: Provenance,
                columns: int = 2) -> Path:
    """Curves in a grid of panels, e.g. softmax and pre-softmax score against α (Figure 2)."""
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    fig = Figure(figsize=(4.6 * columns, 3.4 * rows))
    FigureCanvasAgg(fig)
    for i, panel in enumerate(panels):
        _draw_panel(fig.add_subplot(rows, columns, i + 1), panel)
    fig.suptitle(made_by.mark(title), fontsize=11)
    _margins(fig, left=0.75, right=0.2, bottom=0.55, top=0.6)
    fig.subplots_adjust(wspace=0.3, hspace=0.55)
    return _save(fig, path, made_by)


def scatter(x: Sequence[float], y: Sequence[float], path: Path, *, title: str, xlabel: str,
            ylabel: str, made_by: Provenance) -> Path:
    """Per-image comparison of two methods with the diagonal drawn (points above: y wins)."""
    fig = Figure(figsize=(4.6, 4.4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle="--")
    ax.scatter(x, y, s=18)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(made_by.mark(title), fontsize=10)
    _margins(fig, left=0.75, right=0.2, bottom=0.55, top=0.45)
    return _save(fig, path, made_by)


def chart_pixels(panel: Panel, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A one-panel chart as an RGB array, and the pixel (column, row) of each point of its first line.

    The GIF reuses the chart for every frame and only moves a marker along it.
    """
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    _draw_panel(ax, panel)
    _margins(fig, left=0.7, right=0.15, bottom=0.5, top=0.35)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    line = panel.lines[0]
    points = ax.transData.transform(np.column_stack([line.x, line.y]))
    points[:, 1] = rgba.shape[0] - points[:, 1]  # matplotlib counts rows from the bottom
    return rgba[..., :3].copy(), points


def _draw_panel(ax, panel: Panel) -> None:
    labelled = len(panel.lines) <= MAX_LEGEND_LINES
    for line in panel.lines:
        ax.plot(line.x, line.y, marker="." if len(line.x) <= 60 else None, linewidth=1.2,
                label=line.label if labelled else None)
    ax.set_title(panel.title, fontsize=10)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    ax.grid(alpha=0.3)
    if labelled and any(line.label for line in panel.lines):
        ax.legend(fontsize=7)


def _margins(fig: Figure, *, left: float, right: float, bottom: float, top: float) -> None:
    """Margins in inches, so labels fit whatever the number of panels (cheaper than tight_layout)."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                        top=1 - top / height)


def _save(fig: Figure, path: Path, made_by: Provenance) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata=made_by.metadata())
    return write_bytes(path, buffer.getvalue())
