"""The molecules tab of ``igkit app``: what it shows of the files ``igkit molecules explain`` writes.

Read by :func:`igkit.app.views.find_view`; imported only when the app runs. The atom heat
map and the pair matrix are the item folder's ``atoms.png`` and ``pairs.png``, the
accounting its ``accounting.json``, the dead-feature findings its ``dead_features.json``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from igkit.outputs import colours
from igkit.app.views import AppView, Panels, Table, escape_markdown, figure_array, read_csv_table, read_json_file

EXAMPLES = ("CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
            "O=[N+]([O-])c1ccc(Cl)cc1")
FEATURED = (("atoms.png", "atom heat map (atom + ½ of its pairs)"),
            ("pairs.png", "pair matrix (bonded and non-bonded atom pairs)"))
ACCOUNTING_ROWS = (("score_input", "F(molecule)"), ("score_baseline", "F(baseline)"),
                   ("difference", "F(molecule) − F(baseline)"), ("atoms", "atoms"),
                   ("bonded_pairs", "bonded pairs"), ("non_bonded_pairs", "non-bonded pairs"),
                   ("unexplained", "unexplained (completeness gap)"))


class MoleculesView(AppView):
    input_label = "SMILES (one molecule)"
    placeholder = "CC(=O)Oc1ccccc1C(=O)O"
    examples = EXAMPLES
    max_chars = 500
    title = "molecules"
    alpha_shows = "integrand"  # gradient × (input − baseline): its average over α is the heat map

    def __init__(self, domain: Any) -> None:
        super().__init__(domain)
        self.intro = ("**Molecules**: integrated gradients of the weave network's score, split into atoms "
                      "and atom pairs. Type a SMILES or pick an example.")

    def panels(self, explanation: Any, folder: Path, summary: dict[str, Any]) -> Panels:
        panels = Panels()
        panels.pictures = [(str(folder / name), caption) for name, caption in FEATURED
                           if (folder / name).is_file()]
        accounting = read_json_file(folder / "accounting.json") or summary.get("accounting") or {}
        if accounting:
            rows = []
            for key, text in ACCOUNTING_ROWS:
                if key in accounting:
                    share = accounting.get(f"{key}_share")
                    rows.append([text, _number(accounting[key]),
                                 "" if share is None or share != share else f"{share:.1%}"])
            panels.tables.append(Table("accounting: where the score went", ["part", "value", "share"], rows))
        atoms = read_csv_table(folder / "atoms.csv", "atoms")
        if atoms is not None:
            panels.tables.append(atoms)
        dead = read_json_file(folder / "dead_features.json")
        if dead:
            lines = [escape_markdown(f"atoms {', '.join(str(a) for a in group['atoms'])} share attribution "
                                     f"{group['attribution']:.4g} although their neighbourhoods differ "
                                     f"({'; '.join(group.get('neighbourhoods', {}))})") for group in dead]
            lines = [f"- {line}" for line in lines]
            panels.notes.append("**Dead features:** atoms the model cannot tell apart\n\n" + "\n".join(lines))
        elif dead is not None:
            panels.notes.append("**Dead features:** none found (no group of differently bonded atoms with "
                                "the same attribution).")
        return panels

    def map_picture(self, explanation: Any, values: tuple[torch.Tensor, ...], title: str, *,
                    gradient: bool = False) -> np.ndarray:
        """On the molecule, as the atom heat map: per atom (+ ½ of its pairs), summed over features —
        a method's map, or the integrand at α (whose average over α is the heat map's value)."""
        from .explanation import with_pairs

        graph = explanation.graph
        sums = [v.detach().cpu()[0].reshape(v.shape[1], -1).sum(-1).double() for v in values]
        atoms = sums[0][:graph.n_atoms].numpy()
        if len(sums) > 1:
            atoms = with_pairs(graph, atoms, sums[1][:graph.n_pairs].numpy())
        return molecule_picture(graph.mol, np.asarray(atoms, dtype=np.float64), f"{title}, per atom (+ ½ of its pairs)")


def molecule_picture(mol: Any, atoms: np.ndarray, title: str) -> np.ndarray:
    """The molecule drawn by RDKit with each atom coloured in igkit's diverging convention (this
    picture's own scale, stated under it), atom indices as in atoms.csv."""
    import io

    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from PIL import Image
    from rdkit.Chem.Draw import rdMolDraw2D

    peak = colours.shared_peak([atoms])
    rgb = colours.signed_rgb(atoms, peak)
    tints = {i: tuple(float(c) for c in rgb[i]) for i in range(len(atoms)) if np.isfinite(atoms[i])}
    drawer = rdMolDraw2D.MolDraw2DCairo(420, 320)
    options = drawer.drawOptions()
    options.useBWAtomPalette()
    options.addAtomIndices = True
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol, highlightAtoms=list(tints), highlightAtomColors=tints,
                                       highlightAtomRadii={i: 0.45 for i in tints}, highlightBonds=[])
    drawer.FinishDrawing()
    drawing = np.asarray(Image.open(io.BytesIO(drawer.GetDrawingText())).convert("RGB"))
    fig = Figure(figsize=(5.0, 4.3), dpi=100)
    ax = fig.add_subplot()
    ax.imshow(drawing)
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    mappable = ScalarMappable(norm=Normalize(-peak, peak), cmap=colours.diverging_cmap())
    fig.colorbar(mappable, ax=ax, fraction=0.04, pad=0.02)
    fig.text(0.5, 0.01, colours.legend(), ha="center", va="bottom", fontsize=6.5, color="#333333")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return figure_array(fig)


def _number(value: Any) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)


def app_view(domain: Any) -> MoleculesView:
    return MoleculesView(domain)
