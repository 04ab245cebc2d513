"""PyTorch Geometric models on molecules: IG over node and edge features, or over an edge mask.

A :class:`PygModel` wraps any PyG module called as ``model(x, edge_index, edge_attr, batch)``
(or through the user's ``call(module, x, edge_index, edge_attr, batch)``) that returns one
score per graph (``[graphs]`` or ``[graphs, tasks]``). Molecules become graphs by a
featuriser ``featurize(mol) -> (x, edge_index, edge_attr or None)``; the default is
PyG's own :func:`torch_geometric.utils.from_rdmol` (the features of ``from_smiles``:
9 integer codes per atom, 3 per bond, read as floats), given the molecule igkit parsed,
so atom order is RDKit's. Edges must be the molecule's bonds, both directions.

The straight path scales node features and bond features toward zero by one α. A
model without edge features (``edge_features=False``, or a featuriser that returns
None) is explained over its node features and an edge mask of ones scaled toward
zero together (PyG's explain masks on every message-passing layer; at α = 0 no
message flows). Either way each bond gets one attribution and each atom its own
plus half of its bonds', as for chemprop and the weave network.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from igkit.errors import IGInputError, ModelError

from .bond_graph import BondGraph, bond_index, flatten


def default_call(module: Any, x: Any, edge_index: Any, edge_attr: Any, batch: Any) -> Any:
    """PyG's usual graph-level signature: ``module(x, edge_index, edge_attr, batch)``."""
    return module(x, edge_index, edge_attr, batch)


def from_rdmol_features(mol: Any) -> tuple[Any, Any, Any]:
    """PyG's ``from_rdmol`` (what ``from_smiles`` computes) as float node and edge features."""
    from torch_geometric.utils import from_rdmol

    data = from_rdmol(mol)
    return data.x.float(), data.edge_index, data.edge_attr.float()


@dataclass
class PygModel:
    """A PyG module with the featuriser and call that turn a molecule into its score per task.

    ``task_type="classification"``: the module returns logits and ``--score probability``
    explains their sigmoid; ``"regression"``: the module's output as it is.
    """

    module: Any
    featurizer: Callable[[Any], tuple[Any, Any, Any]] = from_rdmol_features
    call: Callable[..., Any] = default_call
    tasks: list[str] | None = None
    task_type: str = "regression"
    edge_features: bool = True
    name: str = "PyG model"
    featurizer_name: str = field(default="")

    family = "pyg"
    unavailable_methods = {
        "grad_cam": "grad_cam is unavailable for PyTorch Geometric models here: igkit does not know which "
                    "layer holds per-atom activations; use saliency or occlusion",
        "guided_backprop": "guided_backprop is unavailable for PyTorch Geometric models; use saliency",
        "expected_gradients": "expected_gradients needs reference molecules in the model's features, which "
                              "igkit has only for its weave models; use integrated_gradients",
        "multi_baseline_ig": "multi_baseline_ig needs reference molecules in the model's features, which igkit "
                             "has only for its weave models; use integrated_gradients",
    }

    def __post_init__(self) -> None:
        if self.task_type not in ("classification", "regression"):
            raise IGInputError(f"task_type must be 'classification' or 'regression', not {self.task_type!r}")
        self.module.eval()
        self.featurizer_name = self.featurizer_name or getattr(self.featurizer, "__name__", "featurizer")
        width = self._probe()
        if self.tasks is None:
            self.tasks = ["output"] if width == 1 else [f"task_{k}" for k in range(width)]
        elif len(self.tasks) != width:
            raise IGInputError(f"tasks names {len(self.tasks)} outputs, but the model returns {width} per graph")

    @property
    def fingerprint(self) -> str:
        return f"pyg-{self.featurizer_name}-{'edges' if self.edge_features else 'mask'}"

    def weights(self) -> dict[str, Any]:
        return self.module.state_dict()

    def check(self, graph: BondGraph) -> None:
        if graph.fingerprint != self.fingerprint:
            raise IGInputError(f"this molecule was featurized as {graph.fingerprint!r}, but the model reads "
                               f"{self.fingerprint!r}; featurize it with model.featurize")

    def task_index(self, task: str | int | None) -> int:
        names = list(self.tasks or [])
        if task is None:
            return 0
        if isinstance(task, int) or str(task).isdigit():
            if not 0 <= int(task) < len(names):
                raise IGInputError(f"target {task} is out of range: the model has outputs {names}")
            return int(task)
        if task not in names:
            raise IGInputError(f"the model has no output {task!r}; its outputs are {', '.join(names)}")
        return names.index(task)

    def featurize(self, mol: Any) -> BondGraph:
        """Node features and one row per bond (the mask's 1 without edge features)."""
        try:
            x, edge_index, edge_attr = self.featurizer(mol)
        except Exception as exc:  # a featuriser refuses in its own way: the molecule is skipped with it
            raise IGInputError(f"the PyG featuriser {self.featurizer_name} rejected the molecule: "
                               f"{type(exc).__name__}: {exc}") from None
        x = np.asarray(x, dtype=np.float32).reshape(mol.GetNumAtoms(), -1)
        index, relations = bond_index(mol)
        edges = np.asarray(edge_index).reshape(2, -1).T
        bond_of = {tuple(sorted(map(int, pair))): k for k, pair in enumerate(index)}
        found = [bond_of.get(tuple(sorted(map(int, e)))) for e in edges]
        if any(k is None for k in found) or len(found) != 2 * len(index) or \
                sorted(found) != sorted(list(range(len(index))) * 2):
            raise IGInputError("the featuriser's edges are not the molecule's bonds, each in both directions; "
                               "igkit attributes one row per bond (give a featuriser that keeps them so)")
        if self.edge_features and edge_attr is not None:
            attr = np.asarray(edge_attr, dtype=np.float32)
            attr = attr.reshape(len(found), attr.shape[-1] if attr.ndim == 2 else 1)
            bonds = np.zeros((len(index), attr.shape[1]), np.float32)
            for row, k in enumerate(found):
                if (edges[row] == index[k]).all():
                    bonds[k] = attr[row]
            for row, k in enumerate(found):
                if not np.array_equal(attr[row], bonds[k]):
                    raise IGInputError(f"the featuriser gives the two directions of bond {k} different "
                                       f"features; igkit attributes one row per bond")
        else:
            bonds = np.ones((len(index), 1), np.float32)
        return BondGraph(mol, x, bonds, index, relations, self.fingerprint)

    def score_function(self, score: str) -> Callable[..., Any]:
        """``forward(atoms, bonds, bond_atoms, atom_mask, bond_mask) -> [B, tasks]``."""
        sigmoid = self.task_type == "classification" and score == "probability"

        def forward(atoms, bonds, bond_atoms, atom_mask, bond_mask):
            graph = flatten(atoms, bonds, bond_atoms, atom_mask, bond_mask)
            out = self._run(graph)
            if out.dim() == 1:
                out = out[:, None]
            if out.dim() != 2 or out.shape[0] != graph.size:
                raise IGInputError(f"the PyG model returned shape {list(out.shape)} for {graph.size} graphs, not "
                                   f"one score per graph ([graphs] or [graphs, tasks]); pool its node outputs "
                                   f"per graph (e.g. global_add_pool(h, batch)) or pass call=")
            return out.sigmoid() if sigmoid else out
        return forward

    def _run(self, graph: Any) -> Any:
        if self.edge_features:
            return self.call(self.module, graph.V, graph.edge_index, graph.E, graph.batch)
        from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

        set_masks(self.module, graph.E[:, 0], graph.edge_index, apply_sigmoid=False)
        try:
            return self.call(self.module, graph.V, graph.edge_index, None, graph.batch)
        finally:
            clear_masks(self.module)

    def _probe(self) -> int:
        """Outputs per graph, from one forward pass on ethanol (a wrong output shape is one clear error now)."""
        import torch
        from rdkit import Chem

        graph = self.featurize(Chem.MolFromSmiles("CCO"))
        from .bond_graph import pack

        inputs, structure = pack([graph, graph])
        with torch.no_grad():
            return int(self.score_function("logit")(*inputs, *structure).shape[1])


def load_pyg(spec: str, weights: str | Path | None) -> PygModel:
    """``module:factory`` (or ``path/file.py:factory``) called with no arguments, then the state dict in
    ``weights`` loaded weights-only. The factory returns a PyG module or a :class:`PygModel`."""
    import torch

    target, _, factory_name = spec.rpartition(":")
    if not target or not factory_name:
        raise IGInputError(f"--model {spec!r}: give a PyTorch Geometric model as module:factory or file.py:factory")
    try:
        if target.endswith(".py"):
            loader = importlib.util.spec_from_file_location(Path(target).stem, target)
            if loader is None or not Path(target).is_file():
                raise ImportError(f"no file {target}")
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
        factory = getattr(module, factory_name)
    except (ImportError, AttributeError) as exc:
        raise IGInputError(f"--model {spec!r}: cannot find {factory_name} in {target} ({exc})") from None
    built = factory()
    model = built if isinstance(built, PygModel) else PygModel(built, name=spec)
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelError(f"--weights {weights}: not a state dict torch can load weights-only ({exc})") from None
        try:
            model.module.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise ModelError(f"--weights {weights} does not fit {spec}: {' '.join(str(exc).split())[:400]}") \
                from None
        model.module.eval()
    return model
