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

from igkit import (Attribution, Explained, Integration, Item, Prepared, Skipped, content_digest, explain_stream,
                   run_options)
from igkit.errors import IGInputError
from igkit.progress import Progress

from .batching import pack, size_bucket
from .checkpoint import MoleculeModel
from .domain import DEFAULT_MAX_ATOMS
from .featurize import MolGraph, featurize
from .readers import MoleculeInput, MoleculeRecord, Problem, parse_input
from .defaults import DEFAULT_BASELINE, DEFAULT_SCORE
from .weave import baseline_function, score_function

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


def pair_matrix(graph: MolGraph, values: np.ndarray) -> np.ndarray:
    """Unordered pair values as a symmetric ``[n, n]`` matrix; pairs beyond the cut-off are NaN."""
    n = graph.n_atoms
    matrix = np.full((n, n), np.nan)
    i, j = graph.pair_index[:, 0], graph.pair_index[:, 1]
    matrix[i, j] = values
    matrix[j, i] = values
    return matrix


def explain_graphs(model: MoleculeModel, records: Sequence[MoleculeRecord], graphs: Sequence[MolGraph],
                   *, task: str | int | None = None, score: str = DEFAULT_SCORE,
                   baseline: str = DEFAULT_BASELINE, methods: Sequence[str] = (),
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
    if integration is not None:
        integration_options = {**{k: v for k, v in vars(integration).items()}, **integration_options}
    options = run_options(domain, methods, **integration_options)
    check_score(score)
    model.task_index(task)
    items = []
    for k, (rec, graph) in enumerate(zip(records, graphs)):
        molecule = MoleculeInput(rec.source or f"row {rec.row}", rec.smiles, rec.id, rec.row)
        items.append(Item(molecule.source, Featurized(molecule, graph), rec.id, content_digest("graph", str(k))))
    settings = {"task": task, "score": score, "baseline": baseline, "max_atoms": DEFAULT_MAX_ATOMS}
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


# --- other attribution methods (``--methods``): what each needs from a weave network ----------------

#: reference molecules for Expected Gradients / multiple-baseline IG: the all-zero one plus this many
#: drawn from the reference pool (see :func:`reference_stack`)
REFERENCE_DRAWS = 15
#: molecules of RDKit's bundled NCI set whose atom and pair feature rows form the reference pool
REFERENCE_POOL_MOLECULES = 300
_POOLS: dict[str, tuple[np.ndarray, np.ndarray]] = {}
_DRAWS: dict[tuple[str, str, int], np.ndarray] = {}
#: positions per block of reference draws: each block has its own seed, so the draw at a position never
#: depends on how far a batch is padded
_BLOCK = 64


def method_options(method: str, batch: Prepared) -> dict[str, Any]:
    """What ``method`` needs from the weave network and the molecules of ``batch`` (see the README).

    * ``occlusion``: ``groups`` = one unit per atom (all its features) and one per atom pair
      (all its features); padding is one extra unit per molecule (its drop is 0). Pairs are
      their own units because groups may not overlap (an atom "with its pairs" would share
      each pair with another atom); the atom-plus-pairs view splits each pair's drop in half,
      exactly as for IG (:func:`with_pairs`).
    * ``grad_cam``: ``layer`` = the network's last atom layer (``atom_readout``, ``[B, N, C]``),
      a CAM over atoms (see :func:`method_values` for the padding correction).
    * ``guided_backprop``: ``model`` = the network when its weave modules use ``nn.ReLU``
      modules; the weave modules of :mod:`.weave` call ``torch.relu``, which guided
      backpropagation cannot reach, so it is refused (``IGInputError``) rather than silently
      computed as a plain gradient there.
    * ``expected_gradients``, ``multi_baseline_ig``: ``reference`` = :func:`reference_stack`.
    * ``blur_ig``, ``xrai``: refused; they blur or segment images.
    """
    import torch

    net = batch.context.get("net")
    atoms, pairs = batch.inputs
    if method == "occlusion":
        pair_index, atom_mask, pair_mask = batch.forward_args
        B, N, M = atoms.shape[0], atoms.shape[1], pairs.shape[1]
        atom_ids = torch.where(atom_mask > 0, torch.arange(N).expand(B, N), torch.full((B, N), -1))
        pair_ids = torch.where(pair_mask > 0, N + torch.arange(M).expand(B, M), torch.full((B, M), -1))
        return {"groups": (atom_ids[..., None].expand(atoms.shape).contiguous(),
                           pair_ids[..., None].expand(pairs.shape).contiguous())}
    if method == "grad_cam":
        return {"layer": net.atom_readout}
    if method == "guided_backprop":
        if not any(isinstance(m, torch.nn.ReLU) for m in net.weave.modules()):
            raise IGInputError("guided_backprop is unavailable for molecules: the weave modules apply "
                               "torch.relu as a function, which guided backpropagation cannot guide (it "
                               "only hooks nn.ReLU modules), so the result would be a plain gradient "
                               "there; use saliency for the plain gradient")
        return {"model": net}
    if method in ("expected_gradients", "multi_baseline_ig"):
        return {"reference": reference_stack(batch.context["featurization"], atoms.shape[1], pairs.shape[1])}
    return {}


def reference_pool(featurization: Any) -> tuple[np.ndarray, np.ndarray]:
    """Atom feature rows and pair feature rows of the first :data:`REFERENCE_POOL_MOLECULES`
    molecules of RDKit's bundled NCI set, featurized as the model's molecules are (cached)."""
    key = featurization.fingerprint
    if key not in _POOLS:
        from rdkit import Chem, rdBase

        from .tasks import RDKIT_MOLECULES

        atoms, pairs = [], []
        with rdBase.BlockLogs():
            for line in RDKIT_MOLECULES.read_text().splitlines():
                mol = Chem.MolFromSmiles(line.split()[0]) if line.strip() else None
                if mol is None or mol.GetNumAtoms() == 0:
                    continue
                graph = featurize(mol, featurization)
                atoms.append(graph.atoms)
                pairs.append(graph.pairs)
                if len(atoms) == REFERENCE_POOL_MOLECULES:
                    break
        _POOLS[key] = (np.concatenate(atoms).astype(np.float32), np.concatenate(pairs).astype(np.float32))
    return _POOLS[key]


def _draws(key: str, kind: str, size: int, pool_size: int) -> np.ndarray:
    """``[size, REFERENCE_DRAWS]`` pool rows: position p's draws come from block p // 64's own seed."""
    blocks = -(-size // _BLOCK)
    rows = []
    for b in range(blocks):
        cache = (key, kind, b)
        if cache not in _DRAWS:
            rng = np.random.default_rng([0, 1 if kind == "pairs" else 0, b])
            _DRAWS[cache] = rng.integers(pool_size, size=(_BLOCK, REFERENCE_DRAWS))
        rows.append(_DRAWS[cache])
    return np.concatenate(rows)[:size]


def reference_stack(featurization: Any, n_atoms: int, n_pairs: int):
    """Reference molecules for Expected Gradients: ``([K, N, Fa], [K, M, Fp])`` with K = 1 + 15.

    The graph (which atoms and pairs exist, and how they connect) is the explained
    molecule's own: a reference changes features, not structure. Reference 0 is all
    zero (IG's baseline); each of the others gives every atom position an atom feature
    row and every pair position a pair feature row drawn from :func:`reference_pool`
    (the data set's atom and pair feature distributions, drawn independently per
    position, seeded per position so a molecule's references do not depend on its
    padding). Padding positions are masked by the network, so their draws change nothing.
    """
    import torch

    atom_pool, pair_pool = reference_pool(featurization)
    key = featurization.fingerprint
    a = atom_pool[_draws(key, "atoms", n_atoms, len(atom_pool)).T]        # [K-1, N, Fa]
    p = pair_pool[_draws(key, "pairs", n_pairs, len(pair_pool)).T]        # [K-1, M, Fp]
    atoms = np.concatenate([np.zeros((1, n_atoms, atom_pool.shape[1]), np.float32), a])
    pairs = np.concatenate([np.zeros((1, n_pairs, pair_pool.shape[1]), np.float32), p])
    return torch.from_numpy(atoms), torch.from_numpy(pairs)
