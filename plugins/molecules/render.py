"""Pictures of molecule attributions: atoms on the RDKit depiction, pairs as an N×N matrix (Figure 7),
and sheets of several methods side by side.

Colours follow igkit's one convention (:mod:`igkit.outputs.colours`: red raises the target score relative
to the baseline, blue lowers it, white no effect), centred on zero with the same scale on the
colour bar, so signs and sizes read directly; the map's light ends keep black element symbols
and atom indices legible. Every picture says which values share its colour scale: one
molecule's own ±max, the whole run's (``--shared-scale``), or one scale per method across a
sheet (``methods.png``), and repeats what is explained (:mod:`igkit.outputs.explains` caption lines).
"""
from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize, to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter
from PIL import Image
from rdkit import Chem
from rdkit.Chem.Draw import rdMolDraw2D

from igkit.outputs import colours

DRAW_SIZE = (520, 420)
SHEET_DRAW_SIZE = (320, 260)
BAR_WIDTH = 90
#: colour of the N×N matrix cells that are no pair (an atom with itself, or beyond the distance cut-off)
NO_PAIR = "#d9d9d9"


def symmetric_norm(values: np.ndarray) -> Normalize:
    """A colour scale from −max|v| to +max|v| so zero is always white."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.abs(values[np.isfinite(values)]) if values.size else np.zeros(1)
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return Normalize(-top, top)


def atom_labels(mol: Chem.Mol) -> list[str]:
    """``C0``, ``O1``, …: element plus RDKit atom index, as in atoms.csv."""
    return [f"{a.GetSymbol()}{a.GetIdx()}" for a in mol.GetAtoms()]


def _cmap() -> Colormap:
    return colours.diverging_cmap()


def atom_norm(values: np.ndarray, peak: float | None) -> Normalize:
    """±``peak`` when the run shares one scale, else this molecule's own ±max|value|."""
    return Normalize(-peak, peak) if peak else symmetric_norm(values)


def legend_lines(norm: Normalize, shared: bool, score: str) -> list[str]:
    """What the colours mean and which scale is in use, for under a picture."""
    return [colours.legend(score), colours.scale_note(norm.vmax, shared)]


def new_figure(size: tuple[float, float], layout: str | None = None) -> Figure:
    """A figure on its own Agg canvas: no pyplot, no global backend change."""
    fig = Figure(figsize=size, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _draw(mol: Chem.Mol, values: np.ndarray, drawer, norm: Normalize | None = None) -> list[tuple[float, float]]:
    """Draw ``mol`` with atoms coloured by ``values``; returns each atom's drawing coordinates (pixels)."""
    norm, cmap = norm or symmetric_norm(values), _cmap()
    fill = {i: tuple(float(c) for c in cmap(norm(v))[:3]) for i, v in enumerate(values) if np.isfinite(v)}
    options = drawer.drawOptions()
    options.useBWAtomPalette()          # black element symbols: legible on red and blue discs
    options.fillHighlights = True
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol, highlightAtoms=list(fill),
                                       highlightAtomColors=fill,
                                       highlightAtomRadii={i: 0.45 for i in fill},
                                       highlightBonds=[])
    drawer.FinishDrawing()
    return [tuple(drawer.GetDrawCoords(i)) for i in range(mol.GetNumAtoms())]


def _molecule_image(mol: Chem.Mol, values: np.ndarray, size: tuple[int, int], norm: Normalize | None = None):
    drawer = rdMolDraw2D.MolDraw2DCairo(*size)
    coords = _draw(mol, values, drawer, norm)
    return Image.open(io.BytesIO(drawer.GetDrawingText())), coords


def _index_tags(ax, coords: Sequence[tuple[float, float]], fontsize: float) -> None:
    """Atom indices as black text on small white tags beside each atom (legible on any colour)."""
    for i, (x, y) in enumerate(coords):
        ax.text(x + 9, y - 9, str(i), fontsize=fontsize, ha="left", va="bottom", color="black",
                bbox={"boxstyle": "round,pad=0.12", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})


def atom_heatmap_png(mol: Chem.Mol, values: np.ndarray, path: Path, title: str = "",
                     lines: Sequence[str] = (), peak: float | None = None, score: str = "the target score") -> Path:
    """The depiction with atoms coloured by attribution, a colour bar, what is explained (``lines``)
    and the legend; ``peak``: the run's shared scale (else this molecule's own)."""
    norm = atom_norm(values, peak)
    image, coords = _molecule_image(mol, values, DRAW_SIZE, norm)
    fig = new_figure((6.8, 5.4), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(image)
    _index_tags(ax, coords, 7)
    ax.set_axis_off()
    if title:
        ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=9)
    mappable = ScalarMappable(norm=norm, cmap=_cmap())
    fig.colorbar(mappable, ax=ax, fraction=0.04, pad=0.02, label="attribution (atom + ½ of its pairs)")
    words = [*lines, *legend_lines(norm, peak is not None, score)]
    fig.supxlabel("\n".join(w for line in words for w in textwrap.wrap(line, 110)), fontsize=6.5,
                  color="#333333", ha="left", x=0.01)
    fig.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.1)
    return path


def atom_heatmap_svg(mol: Chem.Mol, values: np.ndarray, path: Path, title: str = "",
                     lines: Sequence[str] = (), peak: float | None = None, score: str = "the target score") -> Path:
    """Vector version of :func:`atom_heatmap_png`: RDKit's SVG with an SVG colour bar beside it and
    the same caption lines and legend under it."""
    w, h = DRAW_SIZE
    norm, cmap = atom_norm(values, peak), _cmap()
    drawer = rdMolDraw2D.MolDraw2DSVG(w, h)
    coords = _draw(mol, values, drawer, norm)
    body = drawer.GetDrawingText()
    body = body[body.index("<svg"):]
    tags = "".join(f'<rect x="{x + 8:.1f}" y="{y - 21:.1f}" width="{7 * len(str(i)) + 4}" height="13" rx="3" '
                   f'fill="white" fill-opacity="0.85"/><text x="{x + 10:.1f}" y="{y - 11:.1f}" font-size="11" '
                   f'font-family="sans-serif">{i}</text>' for i, (x, y) in enumerate(coords))
    stops = "".join(f'<stop offset="{k / 10:.1f}" stop-color="{to_hex(cmap(1 - k / 10))}"/>' for k in range(11))
    top, bottom, x = 40, h - 40, w + 20
    ticks = "".join(
        f'<text x="{x + 26}" y="{top + (bottom - top) * (1 - (v - norm.vmin) / (norm.vmax - norm.vmin)) + 4:.1f}" '
        f'font-size="11" font-family="sans-serif">{v:+.3g}</text>' for v in (norm.vmax, 0.0, norm.vmin))
    caption = f'<text x="10" y="16" font-size="12" font-family="sans-serif">{_escape(title)}</text>' if title else ""
    words = [*lines, *legend_lines(norm, peak is not None, score)]
    note = "".join(f'<text x="10" y="{h + 14 + 13 * k}" font-size="10" font-family="sans-serif" fill="#333">'
                   f'{_escape(line)}</text>' for k, line in enumerate(words))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{max(w + BAR_WIDTH, 760)}" '
           f'height="{h + 20 + 13 * len(words)}">'
           f'<rect width="100%" height="100%" fill="white"/>{body}{tags}'
           f'<defs><linearGradient id="bar" x1="0" y1="0" x2="0" y2="1">{stops}</linearGradient></defs>'
           f'<rect x="{x}" y="{top}" width="18" height="{bottom - top}" fill="url(#bar)" stroke="#444"/>'
           f'{ticks}<text x="{x}" y="{bottom + 24}" font-size="11" font-family="sans-serif">atom + ½ pairs</text>'
           f'{caption}{note}</svg>\n')
    path.write_text(svg, encoding="utf-8")
    return path


def pair_heatmap(mol: Chem.Mol, matrix: np.ndarray, paths: list[Path], title: str = "",
                 lines: Sequence[str] = (), score: str = "the target score",
                 peak: float | None = None) -> list[Path]:
    """The N×N matrix of pair attributions with atom labels (grey: no pair), to each path;
    ``peak``: the run's shared scale (else this molecule's own)."""
    labels = atom_labels(mol)
    n = len(labels)
    size = min(12.0, 3.0 + 0.22 * n)
    fig = new_figure((size + 1.2, size + 0.6), layout="constrained")
    ax = fig.add_subplot()
    cmap = _cmap().with_extremes(bad=NO_PAIR)
    im = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, norm=atom_norm(matrix, peak))
    fontsize = max(4, min(9, int(240 / max(n, 1))))
    ax.set_xticks(range(n), labels, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(n), labels, fontsize=fontsize)
    if title:
        ax.set_title("\n".join(textwrap.wrap(title, 60)), fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label="pair attribution")
    words = [*lines, *legend_lines(im.norm, peak is not None, score),
             "grey: no pair (the atom itself, or beyond the distance cut-off)"]
    fig.supxlabel("\n".join(w for line in words for w in textwrap.wrap(line, 110)), fontsize=6.5,
                  color="#333333", ha="left", x=0.01)
    from matplotlib import rc_context

    with rc_context({"svg.fonttype": "none"}):        # SVG text stays text: searchable, selectable
        for path in paths:
            fig.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.1)
    return paths


def method_sheet(mols: Sequence[Chem.Mol], rows: Sequence[Sequence[np.ndarray]], columns: Sequence[str],
                 row_labels: Sequence[str], path: Path, title: str, note: str) -> Path:
    """A grid of atom heat maps: one row per molecule, one column per method.

    ``rows[r][c]`` are molecule r's atom values for method c (NaN: not computed, drawn
    uncoloured). Every column has ONE symmetric colour scale over all its rows, with its
    colour bar under the column: values compare down a column (one method, several
    molecules), never across columns (methods have different units). ``note`` says so
    under the title.
    """
    n_rows, n_cols = len(mols), len(columns)
    fig = new_figure((2.9 * n_cols + 0.6, 2.45 * n_rows + 1.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
    for c, name in enumerate(columns):
        values = np.concatenate([np.ravel(rows[r][c]) for r in range(n_rows)])
        norm = symmetric_norm(values)
        for r in range(n_rows):
            ax = axes[r, c]
            image, coords = _molecule_image(mols[r], np.asarray(rows[r][c], dtype=float), SHEET_DRAW_SIZE, norm)
            ax.imshow(image)
            if mols[r].GetNumAtoms() <= 60:
                _index_tags(ax, coords, 5.5)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if r == 0:
                ax.set_title("\n".join(textwrap.wrap(name, 34)), fontsize=9)
            if c == 0:
                ax.set_ylabel("\n".join(textwrap.wrap(row_labels[r], 28)), fontsize=7)
        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=_cmap()), ax=axes[:, c], location="bottom",
                           shrink=0.85, aspect=18, pad=0.01)
        bar.set_ticks([norm.vmin, norm.vmin / 2, 0.0, norm.vmax / 2, norm.vmax])   # five short labels: no overlap
        bar.ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}" if v else "0"))
        bar.ax.tick_params(labelsize=6)
    if any(not np.all(np.isfinite(np.asarray(v, dtype=float))) for row in rows for v in row):
        fig.legend(handles=[Patch(facecolor="white", edgecolor="#888888",
                                  label="atom without a disc: no value (the method was not computed for it)")],
                   loc="outside lower center", fontsize=7, frameon=False)
    fig.suptitle("\n".join(textwrap.wrap(title, 40 * n_cols) + textwrap.wrap(note, 45 * n_cols)
                           + textwrap.wrap(colours.legend(), 45 * n_cols)), fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.1)
    return path


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
