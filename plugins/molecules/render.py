"""Pictures of molecule attributions: atoms on the RDKit depiction, pairs as an N×N matrix (Figure 7).

Colours are diverging and centred on zero (red raises the score, blue lowers
it), with the same scale on the colour bar, so signs and sizes read directly.
"""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize, to_hex
from matplotlib.figure import Figure
from PIL import Image
from rdkit import Chem
from rdkit.Chem.Draw import rdMolDraw2D

CMAP = "RdBu_r"
DRAW_SIZE = (520, 420)
BAR_WIDTH = 90


def symmetric_norm(values: np.ndarray) -> Normalize:
    """A colour scale from −max|v| to +max|v| so zero is always white."""
    finite = np.abs(values[np.isfinite(values)]) if values.size else np.zeros(1)
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return Normalize(-top, top)


def atom_labels(mol: Chem.Mol) -> list[str]:
    """``C0``, ``O1``, …: element plus RDKit atom index, as in atoms.csv."""
    return [f"{a.GetSymbol()}{a.GetIdx()}" for a in mol.GetAtoms()]


def _cmap():
    return matplotlib.colormaps[CMAP]


def _figure(size: tuple[float, float]) -> Figure:
    """A figure on its own Agg canvas: no pyplot, no global backend change."""
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def _draw(mol: Chem.Mol, values: np.ndarray, drawer) -> None:
    norm, cmap = symmetric_norm(values), _cmap()
    colours = {i: tuple(float(c) for c in cmap(norm(v))[:3]) for i, v in enumerate(values)}
    drawer.drawOptions().addAtomIndices = True
    drawer.drawOptions().fillHighlights = True
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol, highlightAtoms=list(range(mol.GetNumAtoms())),
                                       highlightAtomColors=colours,
                                       highlightAtomRadii={i: 0.45 for i in colours},
                                       highlightBonds=[])
    drawer.FinishDrawing()


def atom_heatmap_png(mol: Chem.Mol, values: np.ndarray, path: Path, title: str = "") -> Path:
    """The depiction with atoms coloured by attribution, plus a colour bar."""
    drawer = rdMolDraw2D.MolDraw2DCairo(*DRAW_SIZE)
    _draw(mol, values, drawer)
    image = Image.open(io.BytesIO(drawer.GetDrawingText()))
    fig = _figure((6.8, 4.4))
    ax = fig.add_subplot()
    ax.imshow(image)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    mappable = ScalarMappable(norm=symmetric_norm(values), cmap=_cmap())
    fig.colorbar(mappable, ax=ax, fraction=0.04, pad=0.02, label="attribution (atom + ½ of its pairs)")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def atom_heatmap_svg(mol: Chem.Mol, values: np.ndarray, path: Path, title: str = "") -> Path:
    """Vector version of :func:`atom_heatmap_png`: RDKit's SVG with an SVG colour bar beside it."""
    w, h = DRAW_SIZE
    drawer = rdMolDraw2D.MolDraw2DSVG(w, h)
    _draw(mol, values, drawer)
    body = drawer.GetDrawingText()
    body = body[body.index("<svg"):]
    norm, cmap = symmetric_norm(values), _cmap()
    stops = "".join(f'<stop offset="{k / 10:.1f}" stop-color="{to_hex(cmap(1 - k / 10))}"/>' for k in range(11))
    top, bottom, x = 40, h - 40, w + 20
    ticks = "".join(
        f'<text x="{x + 26}" y="{top + (bottom - top) * (1 - (v - norm.vmin) / (norm.vmax - norm.vmin)) + 4:.1f}" '
        f'font-size="11" font-family="sans-serif">{v:+.3g}</text>' for v in (norm.vmax, 0.0, norm.vmin))
    caption = f'<text x="10" y="16" font-size="12" font-family="sans-serif">{_escape(title)}</text>' if title else ""
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w + BAR_WIDTH}" height="{h}">'
           f'<rect width="100%" height="100%" fill="white"/>{body}'
           f'<defs><linearGradient id="bar" x1="0" y1="0" x2="0" y2="1">{stops}</linearGradient></defs>'
           f'<rect x="{x}" y="{top}" width="18" height="{bottom - top}" fill="url(#bar)" stroke="#444"/>'
           f'{ticks}<text x="{x}" y="{bottom + 24}" font-size="11" font-family="sans-serif">atom + ½ pairs</text>'
           f'{caption}</svg>\n')
    path.write_text(svg, encoding="utf-8")
    return path


def pair_heatmap(mol: Chem.Mol, matrix: np.ndarray, paths: list[Path], title: str = "") -> list[Path]:
    """The N×N matrix of pair attributions with atom labels (grey: pair beyond the cut-off), to each path."""
    labels = atom_labels(mol)
    n = len(labels)
    size = min(12.0, 3.0 + 0.22 * n)
    fig = _figure((size + 1.2, size))
    ax = fig.add_subplot()
    cmap = _cmap().with_extremes(bad="#d9d9d9")
    im = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, norm=symmetric_norm(matrix))
    fontsize = max(4, min(9, int(240 / max(n, 1))))
    ax.set_xticks(range(n), labels, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(n), labels, fontsize=fontsize)
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label="pair attribution")
    for path in paths:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return paths


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
