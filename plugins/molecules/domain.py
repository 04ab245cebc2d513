"""The ``molecules`` domain, so ``igkit explain --domain molecules SMILES...`` works too.

``igkit molecules explain`` is the richer command (many molecules per IG call,
combined tables, accounting, dead features); this adapter serves the generic
one-item-at-a-time runner of the core.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from igkit.domain import Domain, Prepared
from igkit.result import IGResult

from .attribution import pair_matrix, with_pairs
from .batching import pack
from .checkpoint import MoleculeModel, load_model
from .featurize import featurize
from .readers import parse_smiles
from .render import atom_heatmap_png, atom_heatmap_svg, pair_heatmap
from .weave import score_function


class MoleculesDomain(Domain):
    name = "molecules"
    description = "SMILES → weave network; attributions per atom and atom pair"

    def load_model(self, source: str | None) -> MoleculeModel:
        return load_model(source)

    def prepare(self, model: MoleculeModel, item: str) -> Prepared:
        graph = featurize(parse_smiles(item), model.featurization)
        batch = pack([graph])
        return Prepared(name=item, inputs=batch.inputs, forward=score_function(model.net), target=0,
                        forward_args=batch.structure, label=f"{model.tasks[0]} (probability)",
                        context={"graph": graph})

    def importance(self, result: IGResult, prepared: Prepared) -> dict[str, np.ndarray]:
        graph = prepared.context["graph"]
        atoms, pairs = result.attribution_tuple
        own = atoms[0, :graph.n_atoms].sum(-1).numpy()
        pair_values = pairs[0, :graph.n_pairs].sum(-1).numpy()
        return {"atoms": own, "atoms_with_pairs": with_pairs(graph, own, pair_values), "pairs": pair_values}

    def render(self, result: IGResult, prepared: Prepared, out_dir: Path) -> list[Path]:
        graph = prepared.context["graph"]
        values = self.importance(result, prepared)
        return [atom_heatmap_png(graph.mol, values["atoms_with_pairs"], out_dir / "atoms.png", prepared.name),
                atom_heatmap_svg(graph.mol, values["atoms_with_pairs"], out_dir / "atoms.svg", prepared.name),
                *pair_heatmap(graph.mol, pair_matrix(graph, values["pairs"]),
                              [out_dir / "pairs.png", out_dir / "pairs.svg"], prepared.name)]
