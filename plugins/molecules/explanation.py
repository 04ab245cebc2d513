"""One molecule's attributions as the runner hands them back, and its per-atom and per-pair views.

:class:`MoleculeExplanation` wraps the runner's :class:`igkit.Attribution`; the helpers
below turn feature attributions into atom and pair scores (:func:`with_pairs` folds each
pair's share into its two atoms) and are shared by the tables, the pictures and the evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from igkit import Attribution, Explanation

from .featurize import MolGraph
from .readers import MoleculeInput


@dataclass
class MoleculeExplanation(Explanation):
    """Attributions of one molecule's score to its atoms and atom pairs (the molecules domain's result).

    ``attribution`` is the runner's :class:`igkit.Attribution` (IG result of batch size 1,
    other methods' maps, seconds); the properties below are its molecular views.
    """

    attribution: Attribution

    @property
    def graph(self) -> MolGraph:
        return self.attribution.prepared.context["graph"]

    @property
    def molecule(self) -> MoleculeInput:
        return self.attribution.prepared.context["molecule"]

    @property
    def id(self) -> str:
        """The molecule's id (``--id-col``, SD name, .smi name), else its SMILES."""
        return self.molecule.name

    @property
    def smiles(self) -> str:
        return self.molecule.smiles

    @property
    def task(self) -> str:
        return self.attribution.prepared.context["task"]

    @property
    def score(self) -> str:
        return self.attribution.prepared.context["score"]

    @cached_property
    def atom_features(self) -> np.ndarray:
        """``[n, Fa]``: IG per atom feature."""
        return self.result.attribution_tuple[0][0, :self.graph.n_atoms].detach().cpu().numpy()

    @cached_property
    def pair_features(self) -> np.ndarray:
        """``[m, Fp]``: IG per pair feature."""
        return self.result.attribution_tuple[1][0, :self.graph.n_pairs].detach().cpu().numpy()

    @cached_property
    def extra(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Other methods (``--methods``): per atom and per pair sums, as for IG.

        Grad-CAM maps atoms only (its pairs are NaN); see :func:`method_values`.
        """
        return {name: method_values(name, maps, self.graph) for name, maps in self.attribution.methods.items()}

    @cached_property
    def extra_totals(self) -> dict[str, np.ndarray]:
        """Other methods per atom with half of each pair folded in, as :attr:`atom_totals` for IG
        (an atom-only method such as Grad-CAM: its atom values)."""
        return {name: with_pairs(self.graph, atoms, np.nan_to_num(pairs, nan=0.0))
                for name, (atoms, pairs) in self.extra.items()}

    @property
    def atom_attributions(self) -> np.ndarray:
        """Per atom: the sum of its features' attributions."""
        return self.atom_features.sum(1)

    @property
    def atom_totals(self) -> np.ndarray:
        """Per atom: its own attribution plus half of each pair it belongs to (see :func:`with_pairs`)."""
        return with_pairs(self.graph, self.atom_attributions, self.pair_attributions)

    @property
    def pair_attributions(self) -> np.ndarray:
        """Per unordered pair (see ``graph.pair_index``): the sum of its features' attributions."""
        return self.pair_features.sum(1)

    @property
    def score_input(self) -> float:
        return float(self.result.score_input[0])

    @property
    def score_baseline(self) -> float:
        return float(self.result.score_baseline[0])

    @property
    def completeness_error(self) -> float:
        return float(self.result.completeness_error[0])

    @cached_property
    def dead_features(self) -> list[dict]:
        """Groups of atoms with identical attributions but different neighbourhoods."""
        from .dead_features import dead_feature_groups

        return dead_feature_groups(self.graph.mol, self.atom_attributions)

    def accounting(self) -> dict[str, float]:
        """How F(x) − F(baseline) splits into atoms, bonded pairs and other pairs (and each share)."""
        bonded = self.graph.bonded
        pairs = self.pair_attributions
        parts = {"atoms": float(self.atom_attributions.sum()), "bonded_pairs": float(pairs[bonded].sum()),
                 "non_bonded_pairs": float(pairs[~bonded].sum())}
        gap = self.score_input - self.score_baseline
        out = {"score_input": self.score_input, "score_baseline": self.score_baseline, "difference": gap,
               **parts, "unexplained": gap - sum(parts.values())}
        out.update({f"{k}_share": (v / gap if gap != 0 else float("nan")) for k, v in parts.items()})
        return out


def method_values(name: str, maps: Sequence[Any], graph: MolGraph) -> tuple[np.ndarray, np.ndarray]:
    """One molecule's ``(per atom, per pair)`` values of a method's maps (a batch of one, padded).

    Feature maps (``[1, N, Fa]``, ``[1, M, Fp]``) are summed over each atom's and pair's
    features, padding cut off. Grad-CAM returns one ``[1, N, 1]`` CAM over the atoms of
    the weave network's last atom layer: its pairs are NaN, and because the core averages
    the channel weights over all N padded positions (where the gradient is zero), the CAM
    is multiplied by N / n_atoms, which is exactly the CAM with weights averaged over the
    molecule's real atoms (CAM is positively homogeneous in its weights), so a molecule's
    map does not depend on the size bucket it was padded to.
    """
    n, m = graph.n_atoms, graph.n_pairs
    first = maps[0].detach().cpu().double()
    if len(maps) == 1:                         # an atom map (Grad-CAM)
        atoms = first[0, :n].sum(-1).numpy() * (first.shape[1] / max(n, 1))
        return atoms, np.full(m, np.nan)
    return first[0, :n].sum(-1).numpy(), maps[1][0, :m].detach().cpu().double().sum(-1).numpy()


def with_pairs(graph: MolGraph, atoms: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Atom attributions with each pair's attribution split equally between its two atoms.

    In the simple featurization a benzene ring differs from other carbons only
    through its aromatic *pairs*, so the atoms' own features cannot point at it;
    folding pairs in (the convention of McCloskey et al. 2019) gives per-atom
    scores that still add up to the whole attribution.
    """
    out = np.asarray(atoms, dtype=np.float64).copy()
    half = np.asarray(pairs, dtype=np.float64) / 2
    np.add.at(out, graph.pair_index[:, 0], half)
    np.add.at(out, graph.pair_index[:, 1], half)
    return out


def pair_matrix(graph: MolGraph, values: np.ndarray) -> np.ndarray:
    """Unordered pair values as a symmetric ``[n, n]`` matrix; pairs beyond the cut-off are NaN."""
    n = graph.n_atoms
    matrix = np.full((n, n), np.nan)
    i, j = graph.pair_index[:, 0], graph.pair_index[:, 1]
    matrix[i, j] = values
    matrix[j, i] = values
    return matrix
