"""Integrated gradients for weave models: many molecules per call, per-atom and per-pair scores.

Atom and pair features are scaled toward zero together by one α (the paper's
counterfactuals); which atoms and pairs exist stays fixed. Molecules of similar
size share one call, so the core packs their path points into shared passes.
A batch that fails is retried molecule by molecule, so one bad molecule is
reported and the others still get their attributions.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from igkit import attribute, integrated_gradients
from igkit.cli import DEFAULT_TOLERANCE
from igkit.errors import IGInputError, NonFiniteError
from igkit.methods import get_method
from igkit.progress import progress
from igkit.result import IGResult

from .batching import MoleculeBatch, pack, size_batches
from .checkpoint import MoleculeModel
from .featurize import MolGraph
from .readers import MoleculeRecord, Problem
from .weave import score_function

#: activations (floats) one pass of path points may hold: bounds memory for big molecules, and
#: passes of this size (about 50 points of a typical ZINC molecule) ran fastest on 2 CPU cores
#: (200 benzene test molecules, 50 steps: 1.78 s at 2**22, 2.21 s at 2**25, 2.37 s at 2**20)
ACTIVATION_BUDGET = 2 ** 22
#: what one molecule may raise without stopping the others (bad options still stop the run)
MOLECULE_ERRORS = (NonFiniteError, RuntimeError, MemoryError)


@dataclass
class MoleculeExplanation:
    """Attributions of one molecule's score to its atoms and atom pairs."""

    id: str
    smiles: str
    graph: MolGraph
    task: str
    score: str
    atom_features: np.ndarray          # [n, Fa] IG per atom feature
    pair_features: np.ndarray          # [m, Fp] IG per pair feature
    result: IGResult                   # the batch's result; ``example`` is this molecule
    example: int
    seconds: float
    extra: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

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
        return float(self.result.score_input[self.example])

    @property
    def score_baseline(self) -> float:
        return float(self.result.score_baseline[self.example])

    @property
    def completeness_error(self) -> float:
        return float(self.result.completeness_error[self.example])

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


def path_batch_size(batch: MoleculeBatch, model: MoleculeModel) -> int:
    """Path points per forward/backward pass so that activations stay within the budget."""
    c = model.net.config
    n, m = batch.atoms.shape[1], batch.pairs.shape[1]
    per_row = n * (6 * c.atom_hidden + 14 * c.readout_hidden) + m * 8 * c.pair_hidden
    return max(1, ACTIVATION_BUDGET // max(1, per_row))


def explain_graphs(model: MoleculeModel, records: Sequence[MoleculeRecord], graphs: Sequence[MolGraph],
                   *, task: str | int | None = None, score: str = "probability",
                   methods: Sequence[str] = (), molecules_per_call: int = 32, show_progress: bool = False,
                   **ig_options: Any) -> tuple[list[MoleculeExplanation], list[Problem]]:
    """Explain featurized molecules (``graphs[k]`` of ``records[k]``).

    Returns the explanations in input order and the molecules that failed. Without
    ``steps`` or ``tolerance`` the integration adapts until completeness is within 1%.
    """
    t = model.task_index(task)
    for g in graphs[:1]:
        model.check(g)
    model.net.eval()
    if ig_options.get("tolerance") is None and ig_options.get("steps") is None:
        ig_options["tolerance"] = DEFAULT_TOLERANCE
    ig_options = {k: v for k, v in ig_options.items() if v is not None}
    done: dict[int, MoleculeExplanation] = {}
    problems: list[Problem] = []
    groups = size_batches(graphs, molecules_per_call)
    for idx in progress(groups, desc="explain molecules", enabled=show_progress):
        try:
            found = _explain_batch(model, [graphs[i] for i in idx], t, score, methods, ig_options)
        except MOLECULE_ERRORS:
            found = []
            for i in idx:  # isolate the culprit: the rest still get explained
                try:
                    found += _explain_batch(model, [graphs[i]], t, score, methods, ig_options)
                except MOLECULE_ERRORS as exc:
                    rec = records[i]
                    problems.append(Problem(rec.row, rec.id, rec.smiles, f"{type(exc).__name__}: {exc}"))
                    found.append(None)
        for i, expl in zip(idx, found):
            if expl is not None:
                expl.id, expl.smiles = records[i].id, records[i].smiles
                done[i] = expl
    return [done[i] for i in sorted(done)], problems


def _explain_batch(model: MoleculeModel, graphs: list[MolGraph], t: int, score: str,
                   methods: Sequence[str], ig_options: dict[str, Any]) -> list[MoleculeExplanation]:
    batch = pack(graphs)
    forward = score_function(model.net, score)
    options = {"batch_size": path_batch_size(batch, model), **ig_options}
    start = time.perf_counter()
    result = integrated_gradients(forward, batch.inputs, target=t, forward_args=batch.structure, **options)
    seconds = (time.perf_counter() - start) / len(graphs)
    extra = {name: attribute(name, forward, batch.inputs, target=t, forward_args=batch.structure,
                             batch_size=options["batch_size"]) for name in methods}
    atoms, pairs = (a.detach().numpy() for a in result.attribution_tuple)
    out = []
    for b, g in enumerate(graphs):
        per_method = {name: (a[0][b, :g.n_atoms].sum(-1).detach().numpy(),
                             a[1][b, :g.n_pairs].sum(-1).detach().numpy()) for name, a in extra.items()}
        out.append(MoleculeExplanation(
            id="", smiles="", graph=g, task=model.tasks[t], score=score,
            atom_features=atoms[b, :g.n_atoms], pair_features=pairs[b, :g.n_pairs],
            result=result, example=b, seconds=seconds, extra=per_method))
    return out


def pair_matrix(graph: MolGraph, values: np.ndarray) -> np.ndarray:
    """Unordered pair values as a symmetric ``[n, n]`` matrix; pairs beyond the cut-off are NaN."""
    n = graph.n_atoms
    matrix = np.full((n, n), np.nan)
    i, j = graph.pair_index[:, 0], graph.pair_index[:, 1]
    matrix[i, j] = values
    matrix[j, i] = values
    return matrix


def check_methods(methods: Sequence[str]) -> list[str]:
    """Known extra methods to compute beside IG (IG itself is always computed)."""
    for name in methods:
        if name == "integrated_gradients":
            raise IGInputError("integrated_gradients is always computed; list only extra methods")
        get_method(name)
    return list(methods)
