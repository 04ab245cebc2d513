"""Integrated gradients for weave models: per-atom and per-pair scores, through igkit's one runner.

Atom and pair features are scaled toward zero together by one α (the paper's
counterfactuals); which atoms and pairs exist stays fixed. :func:`prepare_molecule`
turns one molecule into an :class:`igkit.Prepared` whose group is its padded size
bucket, so molecules of similar size share one integration call (their path
points share passes); :func:`collate` pads such a group into one batch. The
runner attributes, isolates a molecule that fails, and hands each molecule's
share to :class:`MoleculeExplanation`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from igkit import (Attribution, Explained, Integration, Item, Prepared, RunOptions, Skipped, content_digest,
                   explain_stream, get_method)
from igkit.errors import IGInputError
from igkit.progress import Progress

from .batching import pack, size_bucket
from .checkpoint import MoleculeModel
from .domain import DEFAULT_MAX_ATOMS
from .featurize import MolGraph, featurize
from .readers import MoleculeInput, MoleculeRecord, Problem, parse_input
from .weave import score_function

#: activations (floats) one pass of path points may hold: bounds memory for big molecules, and
#: passes of this size (about 50 points of a typical ZINC molecule) ran fastest on 2 CPU cores
#: (200 benzene test molecules, 50 steps: 1.78 s at 2**22, 2.21 s at 2**25, 2.37 s at 2**20)
ACTIVATION_BUDGET = 2 ** 22
SCORES = ("probability", "logit")


@dataclass(frozen=True)
class Featurized:
    """A molecule featurized already (evaluation and benchmarks featurize once, then attribute)."""

    molecule: MoleculeInput
    graph: MolGraph


@dataclass
class MoleculeExplanation:
    """Attributions of one molecule's score to its atoms and atom pairs (the molecules domain's result).

    ``attribution`` is the runner's :class:`igkit.Attribution` (IG result of batch size 1,
    other methods' maps, seconds); the properties below are its molecular views.
    """

    attribution: Attribution

    @property
    def item(self) -> Item:
        """The input as the runner read it (``source`` such as "mols.csv line 7", ``digest``)."""
        return self.attribution.item

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

    @property
    def result(self):
        return self.attribution.result

    @property
    def seconds(self) -> float:
        return self.attribution.seconds

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
        """Other methods (``--methods``): per atom and per pair sums, as for IG."""
        n, m = self.graph.n_atoms, self.graph.n_pairs
        return {name: (maps[0][0, :n].sum(-1).detach().cpu().numpy(),
                       maps[1][0, :m].sum(-1).detach().cpu().numpy())
                for name, maps in self.attribution.methods.items()}

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


def row_cost(model: MoleculeModel) -> tuple[int, int]:
    """Activations per path point: ``atoms × first + pairs × second``."""
    c = model.net.config
    return 6 * c.atom_hidden + 14 * c.readout_hidden, 8 * c.pair_hidden


def path_batch_size(n_atoms: int, n_pairs: int, cost: tuple[int, int]) -> int:
    """Path points per forward/backward pass so that activations stay within the budget."""
    return max(1, ACTIVATION_BUDGET // max(1, n_atoms * cost[0] + n_pairs * cost[1]))


def check_score(score: str) -> str:
    if score not in SCORES:
        raise IGInputError(f"unknown score {score!r}; choose one of {', '.join(SCORES)}")
    return score


def prepare_molecule(model: MoleculeModel, value: Any, *, task: str | int | None = None,
                     score: str = "probability", max_atoms: int = DEFAULT_MAX_ATOMS) -> Prepared:
    """One molecule (a :class:`MoleculeInput`, a SMILES string or :class:`Featurized`) made ready
    for the runner; ``IGInputError`` says why a molecule cannot be used."""
    t = model.task_index(task)
    if isinstance(value, Featurized):
        molecule, graph = value.molecule, value.graph
    else:
        molecule = value if isinstance(value, MoleculeInput) else MoleculeInput("", str(value))
        mol = parse_input(molecule)
        if mol.GetNumAtoms() > max_atoms:
            raise IGInputError(f"the molecule has {mol.GetNumAtoms()} heavy atoms, more than --max-atoms "
                               f"{max_atoms}; raise --max-atoms to attribute it (time and memory grow "
                               f"with its atoms and pairs)")
        graph = featurize(mol, model.featurization)
    model.check(graph)
    batch = pack([graph])
    cost = row_cost(model)
    return Prepared(name=molecule.name, inputs=batch.inputs, forward=score_function(model.net, check_score(score)),
                    target=t, forward_args=batch.structure, label=f"{model.tasks[t]} ({score})",
                    context={"graph": graph, "molecule": molecule, "task": model.tasks[t], "score": score,
                             "row_cost": cost},
                    group=("weave", size_bucket(graph.n_atoms)),
                    batch_size=path_batch_size(graph.n_atoms, graph.n_pairs, cost))


def collate(group: Sequence[Prepared]) -> Prepared:
    """Molecules of one size bucket padded into one batch (padding is masked: no prediction or
    attribution changes, see the tests)."""
    first = group[0]
    if len(group) == 1:
        return first
    batch = pack([p.context["graph"] for p in group])
    cost = first.context["row_cost"]
    return Prepared(name=first.name, inputs=batch.inputs, forward=first.forward, target=first.target,
                    forward_args=batch.structure, label=first.label, group=first.group,
                    batch_size=path_batch_size(batch.atoms.shape[1], batch.pairs.shape[1], cost))


def pair_matrix(graph: MolGraph, values: np.ndarray) -> np.ndarray:
    """Unordered pair values as a symmetric ``[n, n]`` matrix; pairs beyond the cut-off are NaN."""
    n = graph.n_atoms
    matrix = np.full((n, n), np.nan)
    i, j = graph.pair_index[:, 0], graph.pair_index[:, 1]
    matrix[i, j] = values
    matrix[j, i] = values
    return matrix


def explain_graphs(model: MoleculeModel, records: Sequence[MoleculeRecord], graphs: Sequence[MolGraph],
                   *, task: str | int | None = None, score: str = "probability", methods: Sequence[str] = (),
                   integration: Integration | None = None, show_progress: bool = False,
                   **integration_options: Any) -> tuple[list[MoleculeExplanation], list[Problem]]:
    """Explain molecules featurized already (``graphs[k]`` of ``records[k]``) through igkit's runner.

    For evaluation and benchmarks, which featurize once and reuse the graphs. Options
    (``steps``, ``tolerance``, ``max_steps``, ``batch_size``, ...) override ``integration``
    (default: the molecules domain's, adaptive to 1%). Returns the explanations in input
    order and the molecules that failed, with reasons.
    """
    from .domain import MoleculesDomain

    domain = MoleculesDomain()
    base = integration or domain.integration
    unknown = sorted(set(integration_options) - set(Integration.__dataclass_fields__))
    if unknown:
        raise IGInputError(f"unknown integration option {unknown[0]!r}; options are "
                           f"{', '.join(Integration.__dataclass_fields__)}")
    options = RunOptions(_checked_integration(base.with_overrides(**integration_options)),
                         _checked_methods(methods))
    check_score(score)
    model.task_index(task)
    items = []
    for k, (rec, graph) in enumerate(zip(records, graphs)):
        molecule = MoleculeInput(rec.source or f"row {rec.row}", rec.smiles, rec.id, rec.row)
        items.append(Item(molecule.source, Featurized(molecule, graph), rec.id, content_digest("graph", str(k))))
    settings = {"task": task, "score": score, "max_atoms": DEFAULT_MAX_ATOMS}
    position = {item.digest: k for k, item in enumerate(items)}
    found: dict[int, MoleculeExplanation] = {}
    problems: list[Problem] = []
    bar = Progress([], total=len(items), desc="explain molecules", enabled=show_progress)
    for outcome in explain_stream(domain, model, items, settings, options):
        bar.advance()
        if isinstance(outcome, Explained):
            found[position[outcome.item.digest]] = outcome.explanation
        elif isinstance(outcome, Skipped):
            rec = records[position[outcome.item.digest]]
            problems.append(Problem(rec.row, rec.id, rec.smiles, outcome.reason, rec.source))
    bar.close()
    return [found[k] for k in sorted(found)], problems


def _checked_integration(integration: Integration) -> Integration:
    """Options that would fail for every molecule are refused once, up front."""
    for name in ("steps", "max_steps", "batch_size"):
        value = getattr(integration, name)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise IGInputError(f"{name} must be a whole number ≥ 1, got {value!r}")
    if not integration.tolerance > 0:
        raise IGInputError(f"tolerance must be > 0, got {integration.tolerance!r}")
    if integration.floor < 0:
        raise IGInputError(f"floor must be ≥ 0, got {integration.floor!r}")
    return integration


def _checked_methods(methods: Sequence[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(m.strip() for m in methods if m.strip()))
    for name in names:
        if name == "integrated_gradients":
            raise IGInputError("integrated_gradients is always computed; list only the other methods")
        get_method(name)
    return names
