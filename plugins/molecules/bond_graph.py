"""Molecules as atoms and bonds, the graph of message-passing networks (chemprop, PyTorch Geometric).

The weave network of :mod:`.featurize` sees atom *pairs*; chemprop's D-MPNN and
most PyG models see atoms and *bonds*. A :class:`BondGraph` gives the bond graph
the same face as :class:`~.featurize.MolGraph` (``pair_index``, ``relations``,
``bonded``: every pair is a bond), so explanations, tables and pictures of the
molecules domain serve both without a second code path.

Bond features are kept once per bond (both directions of a message-passing
graph carry the same bond features); :func:`flatten` rebuilds the directed graph
inside the forward pass, so scaling a bond's one row scales both of its edges and
each bond receives one attribution.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .featurize import BOND_TYPES


@dataclass
class BondGraph:
    """One molecule: atom features ``[n, Fa]``, bond features ``[m, Fb]`` at ``pair_index`` (bond order)."""

    mol: Any
    atoms: np.ndarray
    pairs: np.ndarray            # one row per bond, RDKit bond order
    pair_index: np.ndarray       # [m, 2] the bond's begin and end atoms
    relations: list[str]         # bond type per bond
    fingerprint: str             # the featuriser that made the features

    @property
    def n_atoms(self) -> int:
        return int(self.atoms.shape[0])

    @property
    def n_pairs(self) -> int:
        return int(self.pair_index.shape[0])

    @property
    def bonded(self) -> np.ndarray:
        return np.ones(self.n_pairs, dtype=bool)


def bond_index(mol: Any) -> tuple[np.ndarray, list[str]]:
    """``[m, 2]`` begin/end atoms of each bond in RDKit order, and each bond's type."""
    index = np.array([[b.GetBeginAtomIdx(), b.GetEndAtomIdx()] for b in mol.GetBonds()],
                     dtype=np.int64).reshape(-1, 2)
    return index, [BOND_TYPES.get(b.GetBondType(), str(b.GetBondType()).lower()) for b in mol.GetBonds()]


def pack(graphs: Sequence[BondGraph]):
    """Pad molecules into ``inputs = (atoms [B, N, Fa], bonds [B, M, Fb])`` and the fixed structure
    ``(bond_atoms [B, M, 2], atom_mask [B, N], bond_mask [B, M])`` (igkit's ``forward_args``): the
    weave networks' padding, with bonds as the pairs."""
    from .batching import pack as pad

    batch = pad(graphs)
    return batch.inputs, batch.structure


@dataclass
class FlatGraph:
    """A padded batch as one disjoint graph: what message-passing libraries take."""

    V: Any                 # [atoms, Fa]
    E: Any                 # [2 * bonds, Fb]: each bond twice, u→v then v→u
    edge_index: Any        # [2, 2 * bonds]
    rev_edge_index: Any    # [2 * bonds]: the reverse of each edge
    batch: Any             # [atoms]: the molecule of each atom
    size: int              # molecules


def flatten(atoms, bonds, bond_atoms, atom_mask, bond_mask) -> FlatGraph:
    """The padded tensors of :func:`pack` (scaled or not) as one disjoint directed graph."""
    import torch

    B = atoms.shape[0]
    keep_atoms, keep_bonds = atom_mask > 0, bond_mask > 0
    offsets = torch.cumsum(keep_atoms.sum(1), 0) - keep_atoms.sum(1)          # first atom of each molecule
    ends = (bond_atoms + offsets[:, None, None])[keep_bonds]                   # [bonds, 2] global atoms
    E = bonds[keep_bonds].repeat_interleave(2, dim=0)
    src = torch.stack([ends[:, 0], ends[:, 1]], 1).reshape(-1)
    dst = torch.stack([ends[:, 1], ends[:, 0]], 1).reshape(-1)
    rev = torch.arange(src.shape[0]) ^ 1
    batch = torch.arange(B).repeat_interleave(keep_atoms.sum(1))
    return FlatGraph(atoms[keep_atoms], E, torch.stack([src, dst]), rev, batch, B)


def occlusion_groups(inputs, structure):
    """Occlusion units: one per atom (all its features) and one per bond; padding is -1 (never a unit)."""
    import torch

    atoms, bonds = inputs
    _, atom_mask, bond_mask = structure
    B, N, M = atoms.shape[0], atoms.shape[1], bonds.shape[1]
    atom_ids = torch.where(atom_mask > 0, torch.arange(N).expand(B, N), torch.full((B, N), -1))
    bond_ids = torch.where(bond_mask > 0, N + torch.arange(M).expand(B, M), torch.full((B, M), -1))
    return (atom_ids[..., None].expand(atoms.shape).contiguous(),
            bond_ids[..., None].expand(bonds.shape).contiguous())


# --- the runner's hooks for any bond-graph model (chemprop, PyTorch Geometric) ----------------------------

def score_name(model: Any, score: str) -> str:
    """What F is: the class probability or logit of a classifier, the prediction of a regression model."""
    return score if model.task_type == "classification" else "prediction"


def prepare(model: Any, value: Any, *, task: str | int | None, score: str, max_atoms: int):
    """One molecule ready for igkit's runner; ``IGInputError`` says why a molecule cannot be used.

    ``model`` is a bond-graph model (:class:`~.chemprop_model.ChempropModel`,
    :class:`~.pyg_model.PygModel`): ``featurize(mol)``, ``score_function(score)``, ``tasks``,
    ``task_index``, ``task_type``, ``check(graph)``, ``family``. ``value`` is a molecule
    (:class:`~.readers.MoleculeInput`, a SMILES) or one featurized already
    (:class:`~.attribution.Featurized` holding a :class:`BondGraph`).
    """
    from igkit import Prepared

    from .batching import size_bucket
    from .readers import MoleculeInput, parse_input

    t = model.task_index(task)
    if isinstance(getattr(value, "graph", None), BondGraph):      # featurized already (evaluation)
        molecule, graph = value.molecule, value.graph
    else:
        molecule = value if isinstance(value, MoleculeInput) else MoleculeInput("", str(value))
        mol = parse_input(molecule)
        if mol.GetNumAtoms() > max_atoms:
            from igkit.errors import IGInputError

            raise IGInputError(f"the molecule has {mol.GetNumAtoms()} heavy atoms, more than --max-atoms "
                               f"{max_atoms}; raise --max-atoms to attribute it")
        graph = model.featurize(mol)
    model.check(graph)
    inputs, structure = pack([graph])
    name = score_name(model, score)
    return Prepared(name=molecule.name, inputs=inputs, forward=model.score_function(score), target=t,
                    forward_args=structure, label=f"{model.tasks[t]} ({name})",
                    context={"graph": graph, "molecule": molecule, "task": model.tasks[t], "score": name,
                             "baseline": "zero", "family": model.family, "model": model},
                    group=(model.family, size_bucket(graph.n_atoms)))


def collate(group: Sequence[Any]):
    """Molecules of one size bucket padded into one batch (padding is dropped before the network)."""
    from igkit import Prepared

    first = group[0]
    if len(group) == 1:
        return first
    inputs, structure = pack([p.context["graph"] for p in group])
    context = {"graphs": [p.context["graph"] for p in group], "family": first.context["family"],
               "model": first.context["model"]}
    return Prepared(name=first.name, inputs=inputs, forward=first.forward, target=first.target,
                    forward_args=structure, label=first.label, group=first.group, context=context)


def method_options(method: str, batch: Any) -> dict[str, Any]:
    """Occlusion removes one atom's or one bond's features at a time; gradient methods need nothing;
    the model family says which methods it cannot offer, and why."""
    from igkit.errors import IGInputError

    reasons = batch.context["model"].unavailable_methods
    if method in reasons:
        raise IGInputError(reasons[method])
    if method == "occlusion":
        return {"groups": occlusion_groups(batch.inputs, batch.forward_args)}
    return {}


def describe(prepared: Any, model: Any) -> Any:
    """What captions and summaries say F and the baseline are for a bond-graph model."""
    task, score = prepared.context["task"], prepared.context["score"]
    prepared.scale = score
    prepared.baseline_name = "all-zero atom and bond features"
    prepared.target_meaning = (f"{score} that task '{task}' is 1" if model.task_type == "classification" else
                               f"{model.family}'s prediction of '{task}', in the units it was trained on")
    return prepared


def predict(model: Any, graphs: Sequence[BondGraph], score: str = "logit", batch_size: int = 128):
    """Scores ``[n, tasks]`` of featurized molecules, in input order (no gradients)."""
    import torch

    forward = model.score_function(score)
    out = []
    with torch.no_grad():
        for start in range(0, len(graphs), batch_size):
            inputs, structure = pack(graphs[start:start + batch_size])
            out.append(forward(*inputs, *structure).reshape(len(graphs[start:start + batch_size]), -1))
    return torch.cat(out) if out else torch.zeros(0, len(model.tasks))
