"""Weave models through igkit's one runner: one molecule made ready to integrate, and a size bucket batched.

Atom and pair features are scaled toward zero together by one α (the paper's
counterfactuals); which atoms and pairs exist stays fixed. :func:`prepare_molecule`
turns one molecule into an :class:`igkit.Prepared` whose group is its padded size
bucket, so molecules of similar size share one integration call (their path
points share passes); :func:`collate` pads such a group into one batch. The
runner attributes, isolates a molecule that fails, and hands each molecule's
share to :class:`~.explanation.MoleculeExplanation`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from igkit import Prepared
from igkit.errors import IGInputError

from .batching import pack, size_bucket
from .checkpoint import MoleculeModel
from .defaults import DEFAULT_BASELINE, DEFAULT_MAX_ATOMS, DEFAULT_SCORE, SCORES
from .featurize import MolGraph, featurize
from .readers import MoleculeInput, parse_input
from .weave import baseline_function, score_function

#: activations (floats) one pass of path points may hold: bounds memory for big molecules, and
#: passes of this size (about 50 points of a typical ZINC molecule) ran fastest on 2 CPU cores
#: (200 benzene test molecules, 50 steps: 1.78 s at 2**22, 2.21 s at 2**25, 2.37 s at 2**20)
ACTIVATION_BUDGET = 2 ** 22


@dataclass(frozen=True)
class Featurized:
    """A molecule featurized already (evaluation and benchmarks featurize once, then attribute)."""

    molecule: MoleculeInput
    graph: MolGraph


def row_cost(model: MoleculeModel) -> tuple[int, int]:
    """Activations per path point: ``atoms × first + pairs × second``."""
    c = model.net.config
    return 6 * c.atom_hidden + 14 * c.readout_hidden, 8 * c.pair_hidden


def path_batch_size(n_atoms: int, n_pairs: int, cost: tuple[int, int]) -> int:
    """Path points per forward/backward pass so that activations stay within the budget."""
    return max(1, ACTIVATION_BUDGET // max(1, n_atoms * cost[0] + n_pairs * cost[1]))


def check_score(score: str) -> str:
    """``score`` if the weave network can explain it (checked once, before any molecule is read)."""
    if score not in SCORES:
        raise IGInputError(f"unknown score {score!r}; choose one of {', '.join(SCORES)}")
    return score


def prepare_molecule(model: MoleculeModel, value: Any, *, task: str | int | None = None,
                     score: str = DEFAULT_SCORE, baseline: str = DEFAULT_BASELINE,
                     max_atoms: int = DEFAULT_MAX_ATOMS) -> Prepared:
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
                    baselines=baseline_function(baseline),
                    context={"graph": graph, "molecule": molecule, "task": model.tasks[t], "score": score,
                             "baseline": baseline,
                             "row_cost": cost, "net": model.net, "featurization": model.featurization},
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
    context = {"graphs": [p.context["graph"] for p in group], "row_cost": cost, "net": first.context["net"],
               "featurization": first.context["featurization"]}
    return Prepared(name=first.name, inputs=batch.inputs, forward=first.forward, target=first.target,
                    baselines=first.baselines, forward_args=batch.structure, label=first.label,
                    group=first.group, context=context,
                    batch_size=path_batch_size(batch.atoms.shape[1], batch.pairs.shape[1], cost))
