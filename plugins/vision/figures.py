"""Charts and picture panels (matplotlib's Agg canvas, no pyplot state): Figure 4/6 panels,
saturation curves (Figures 2 and 12), the interior-gradient trend (Figure 3) and AOPC (Figure 5)."""
from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from igkit.outputs import colours
from igkit.io.records import write_bytes

from .records import Provenance

#: above this many lines a panel's own legend hides the data: the lines then get distinct colour ×
#: dash styles and one legend beside all panels (up to MAX_FIGURE_LEGEND entries; beyond, none, said so)
MAX_LEGEND_LINES = 10
MAX_FIGURE_LEGEND = 60
COLOURS = tuple(f"C{i}" for i in range(10))
DASHES = ("-", "--", ":", "-.")
#: pictures whose shorter side is smaller are enlarged (nearest neighbour) so a small --size stays visible
MIN_DISPLAY = 224
#: the narrowest caption block in pixels: narrower, the caption lines would wrap into a tall column
MIN_CAPTION_WIDTH = 640
#: caption text size and colour, the same under every picture (matplotlib charts and pixel pictures)
CAPTION_POINTS = 7.5
CAPTION_COLOUR = "#333333"


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


def picture_row(cells: Sequence[Cell], path: Path, title: str, made_by: Provenance,
                caption: Sequence[str] = ()) -> Path:
    """Pictures and text side by side (Figure 4: original | label and score | IG | gradients), with
    ``caption`` lines under them (what is explained, what the colours mean)."""
    return _save(picture_row_figure(cells, title, made_by, caption), path, made_by)


def picture_row_figure(cells: Sequence[Cell], title: str, made_by: Provenance,
                       caption: Sequence[str] = ()) -> Figure:
    fig = Figure(figsize=(3.0 * len(cells), 3.5 + 0.16 * len(caption)), layout="constrained")
    FigureCanvasAgg(fig)
    for i, cell in enumerate(cells):
        ax = fig.add_subplot(1, len(cells), i + 1)
        ax.set_title(wrap(cell.title, 3.0, 10), fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if cell.image is not None:
            ax.imshow(cell.image)
        else:
            ax.text(0.5, 0.5, cell.text, ha="center", va="center", fontsize=10, wrap=True,
                    transform=ax.transAxes)
            for spine in ax.spines.values():
                spine.set_visible(False)
    fig.suptitle(wrap(made_by.mark(title), 3.0 * len(cells), 11), fontsize=11)
    if caption:
        fig.supxlabel(wrap("\n".join(caption), 3.0 * len(cells), CAPTION_POINTS), fontsize=CAPTION_POINTS,
                      ha="left", x=0.01, color=CAPTION_COLOUR)
    return fig


def line_panels(panels: Sequence[Panel], path: Path, title: str, made_by: Provenance,
                columns: int = 2) -> Path:
    """Curves in a grid of panels, e.g. softmax and pre-softmax score against α (Figure 2)."""
    return _save(line_panels_figure(panels, title, made_by, columns), path, made_by)


def line_panels_figure(panels: Sequence[Panel], title: str, made_by: Provenance, columns: int = 2) -> Figure:
    """The figure of :func:`line_panels`.

    Up to :data:`MAX_LEGEND_LINES` lines a panel has its own legend; with more, every line
    gets its own colour × dash style and one legend beside the panels names them."""
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    labels = list(dict.fromkeys(line.label for panel in panels for line in panel.lines if line.label))
    shared = len(labels) > MAX_LEGEND_LINES
    legend_width = 0.0
    if shared and len(labels) <= MAX_FIGURE_LEGEND:
        legend_width = (1 + (len(labels) - 1) // 30) * (0.8 + 0.065 * max(len(x) for x in labels))
    width = 4.6 * columns + legend_width
    fig = Figure(figsize=(width, 3.4 * rows + 0.5), layout="constrained")
    FigureCanvasAgg(fig)
    styles = {label: (COLOURS[i % len(COLOURS)], DASHES[(i // len(COLOURS)) % len(DASHES)])
              for i, label in enumerate(labels)}
    for i, panel in enumerate(panels):
        _draw_panel(fig.add_subplot(rows, columns, i + 1), panel, styles if shared else None)
    if shared and len(labels) <= MAX_FIGURE_LEGEND:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=c, linestyle=d, linewidth=1.2) for c, d in styles.values()]
        fig.legend(handles, labels, loc="outside right upper", fontsize=7, ncols=1 + (len(labels) - 1) // 30,
                   title=f"{len(labels)} lines", title_fontsize=8)
    elif shared:
        title = f"{title} ({len(labels)} lines, too many to name; see the CSV)"
    fig.suptitle(wrap(made_by.mark(title), width, 11), fontsize=11)
    return fig


def scatter(x: Sequence[float], y: Sequence[float], path: Path, *, title: str, xlabel: str,
            ylabel: str, made_by: Provenance) -> Path:
    """Per-image comparison of two methods with the diagonal drawn (points above: y wins)."""
    return _save(scatter_figure(x, y, title=title, xlabel=xlabel, ylabel=ylabel, made_by=made_by), path, made_by)


def scatter_figure(x: Sequence[float], y: Sequence[float], *, title: str, xlabel: str, ylabel: str,
                   made_by: Provenance) -> Figure:
    fig = Figure(figsize=(4.6, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle="--", label="equal share")
    ax.scatter(x, y, s=18, label="one image")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(wrap(made_by.mark(title), 4.4, 10), fontsize=10)
    return fig


def wrap(title: str, width_inches: float, fontsize: float) -> str:
    """``title`` broken into lines that fit ``width_inches`` at ``fontsize`` points."""
    chars = max(12, int(width_inches * 72 / (0.62 * fontsize)))
    return "\n".join(textwrap.fill(part, chars) for part in title.split("\n"))


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


def enlarged(picture: np.ndarray) -> np.ndarray:
    """``picture`` ``[H, W, 3]`` enlarged by a whole factor (nearest neighbour, pixels stay square)
    until its shorter side is at least :data:`MIN_DISPLAY`."""
    zoom = max(1, -(-MIN_DISPLAY // min(picture.shape[:2])))
    return np.repeat(np.repeat(picture, zoom, axis=0), zoom, axis=1)


def caption_pixels(lines: Sequence[str], width: int) -> np.ndarray:
    """``lines`` wrapped to ``width`` pixels in the still pictures' caption font: an RGB block
    ``[h, width, 3]`` (uint8, white background) to put under a pixel picture or animation frame."""
    dpi = 100
    text = wrap("\n".join(lines), width / dpi - 0.1, CAPTION_POINTS)
    rows = text.count("\n") + 1
    fig = Figure(figsize=(width / dpi, (rows * CAPTION_POINTS * 1.6 / 72) + 0.2), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    fig.text(0.05 * dpi / width, 1 - 0.05 * dpi / (fig.get_figheight() * dpi), text, ha="left", va="top",
             fontsize=CAPTION_POINTS, color=CAPTION_COLOUR)
    canvas.draw()
    block = np.asarray(canvas.buffer_rgba())[..., :3]
    inked = np.flatnonzero((block < 250).any(axis=(1, 2)))
    bottom = int(inked[-1]) + 6 if inked.size else 0
    return block[:bottom].copy()


def captioned(picture: np.ndarray, block: np.ndarray) -> np.ndarray:
    """``picture`` (centred) over a caption ``block``, on white, as wide as the wider of the two."""
    width = max(picture.shape[1], block.shape[1])
    out = np.full((picture.shape[0] + block.shape[0], width, 3), 255, dtype=np.uint8)
    left = (width - picture.shape[1]) // 2
    out[:picture.shape[0], left:left + picture.shape[1]] = picture
    out[picture.shape[0]:, :block.shape[1]] = block
    return out


def _draw_panel(ax, panel: Panel, styles: dict[str, tuple[str, str]] | None = None) -> None:
    labelled = styles is None and len(panel.lines) <= MAX_LEGEND_LINES
    for line in panel.lines:
        colour, dash = (styles or {}).get(line.label, (None, "-"))
        ax.plot(line.x, line.y, marker="." if len(line.x) <= 60 else None, linewidth=1.2, color=colour,
                linestyle=dash, markersize=4, label=line.label if labelled else None)
    ax.set_title(wrap(panel.title, 4.4, 10), fontsize=10)
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


@dataclass
class GridRow:
    """One image of a method grid: its name, its pixels ``[H, W, 3]`` and a pixel map per method."""

    name: str
    image: np.ndarray
    maps: dict[str, np.ndarray]


def column_scales(rows: Sequence[GridRow], methods: Sequence[str], high: float = 99.5) -> dict[str, float]:
    """One colour scale per method for the whole sheet: 0 up to the ``high`` percentile of that
    method's pixel values over every image shown (negative values show as 0)."""
    scales = {}
    for method in methods:
        values = np.concatenate([np.clip(r.maps[method], 0, None).ravel() for r in rows if method in r.maps])
        top = float(np.percentile(values, high)) if values.size else 0.0
        scales[method] = top if top > 0 else float(values.max(initial=0.0)) or 1.0
    return scales


def method_grid(rows: Sequence[GridRow], methods: Sequence[str], path: Path, title: str, made_by: Provenance,
                scales: dict[str, float], note: str = "") -> Path:
    """The familiar comparison sheet: one row per image, the image then one column per method, each
    column on its own colour scale shared by all rows (a colour bar under it)."""
    return _save(method_grid_figure(rows, methods, title, made_by, scales, note), path, made_by)


def method_grid_figure(rows: Sequence[GridRow], methods: Sequence[str], title: str, made_by: Provenance,
                       scales: dict[str, float], note: str = "") -> Figure:
    columns = 1 + len(methods)
    cell = 1.7
    width = cell * columns + 0.4
    fig = Figure(figsize=(width, cell * len(rows) + 1.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), columns, squeeze=False)
    for r, row in enumerate(rows):
        ax = axes[r, 0]
        ax.imshow(np.clip(row.image, 0, 1))
        ax.set_ylabel(wrap(row.name, cell, 7), fontsize=7)
        for c, method in enumerate(methods, start=1):
            ax = axes[r, c]
            shown = ax.imshow(np.clip(row.maps[method], 0, None), cmap=colours.magnitude_cmap(), vmin=0.0,
                              vmax=scales[method], interpolation="nearest") if method in row.maps else None
            if shown is None:
                ax.text(0.5, 0.5, "not computed", ha="center", va="center", fontsize=7, transform=ax.transAxes)
            if r == len(rows) - 1 and shown is not None:
                bar = fig.colorbar(shown, ax=axes[:, c], location="bottom", shrink=0.9, aspect=12)
                bar.ax.tick_params(labelsize=6, rotation=45)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("image", fontsize=8)
    for c, method in enumerate(methods, start=1):
        axes[0, c].set_title(wrap(method.replace("_", " "), cell, 8), fontsize=8)
    text = made_by.mark(title) + (f"\n{note}" if note else "") + f"\n{colours.MAGNITUDE_LEGEND}"
    fig.suptitle(wrap(text, width, 9), fontsize=9)
    return fig


def layout_problems(fig: Figure) -> list[str]:
    """Texts of ``fig`` that stick out of the picture or overlap another title or the figure title
    (drawn first); empty when the layout is clean. Used by the tests on every sheet kind."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    texts = [fig._suptitle] if fig._suptitle is not None else []
    for ax in fig.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        if ax.get_legend() is not None:
            texts += ax.get_legend().get_texts()
    for legend in fig.legends:
        texts += [*legend.get_texts(), legend.get_title()]
    texts = [t for t in texts if t.get_visible() and t.get_text().strip()]
    problems = []
    for t in texts:
        e = t.get_window_extent(renderer)
        if e.x0 < box.x0 - 1 or e.x1 > box.x1 + 1 or e.y0 < box.y0 - 1 or e.y1 > box.y1 + 1:
            problems.append(f"clipped: {t.get_text()!r}")
    titles = [t for t in texts if t is fig._suptitle] + [ax.title for ax in fig.axes if ax.title.get_text()]
    for i, a in enumerate(titles):
        for b in titles[i + 1:]:
            if a.get_window_extent(renderer).overlaps(b.get_window_extent(renderer)):
                problems.append(f"overlap: {a.get_text()!r} / {b.get_text()!r}")
    return problems
