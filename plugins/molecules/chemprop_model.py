"""A chemprop v2 MPNN as igkit explains it: integrated gradients over chemprop's own featurisation.

The straight path scales the molecule's atom features V and bond features E
(chemprop's ``BatchMolGraph``) by one α toward zero. chemprop's bond messages
start from each bond's features concatenated with its source atom's features,
so scaling V and E together is the straight path in everything the network
reads. Bond features are held once per bond (see :mod:`.bond_graph`), so each
bond gets one attribution; atoms get their own share plus half of each of their
bonds' (``attribution_with_pairs``), as for the weave network's pairs.

F is chemprop's prediction for the chosen task as ``chemprop predict`` gives it:
a regression value in the user's units (chemprop's output scaler applied; the
mean of MVE, evidential and quantile models) or a class probability
(``--score logit``: the logit before the sigmoid).

Loading a checkpoint into a :class:`ChempropModel` is :mod:`.chemprop_checkpoint`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from igkit.errors import IGInputError

from .bond_graph import BondGraph, bond_index, flatten
from .checkpoint import task_position

#: methods that need more than the gradient of F, and why a chemprop model cannot offer them here
UNAVAILABLE = {
    "grad_cam": "grad_cam is unavailable for chemprop models: chemprop sums messages into atoms inside one "
                "function, so no module returns per-atom activations to weight; use saliency or occlusion",
    "guided_backprop": "guided_backprop is unavailable for chemprop models; use saliency for the plain gradient",
    "expected_gradients": "expected_gradients needs reference molecules featurized by the model's featuriser, "
                          "which igkit has only for its weave models; use integrated_gradients or smoothgrad",
    "multi_baseline_ig": "multi_baseline_ig needs reference molecules featurized by the model's featuriser, "
                         "which igkit has only for its weave models; use integrated_gradients",
}


@dataclass
class ChempropModel:
    """A chemprop v2 MPNN in eval mode, with the featuriser its inputs need and its task names."""

    mpnn: Any
    featurizer: Any
    featurizer_name: str
    tasks: list[str]
    task_type: str            # "classification" or "regression"
    predictor: str
    path: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)

    family = "chemprop"
    unavailable_methods = UNAVAILABLE

    @property
    def name(self) -> str:
        return self.path.name if self.path else "chemprop MPNN"

    def featurize(self, mol: Any) -> BondGraph:
        """chemprop's own atom and bond features of ``mol`` (its ``MolGraph``), one row per bond."""
        try:
            graph = self.featurizer(mol)
        except Exception as exc:  # chemprop raises many kinds; each means "this molecule cannot be read"
            raise IGInputError(f"chemprop's featuriser rejected the molecule: {exc}") from None
        index, relations = bond_index(mol)
        bonds = graph.E[0::2]         # chemprop stores each bond twice (u→v, v→u), with the same features
        return BondGraph(mol, graph.V.astype("float32"), bonds.astype("float32"), index, relations,
                         self.fingerprint)

    def score_function(self, score: str) -> Callable[..., Any]:
        """``forward(atoms, bonds, bond_atoms, atom_mask, bond_mask) -> [B, tasks]``: chemprop's prediction."""
        mpnn = self.mpnn
        logits = score == "logit" and self.task_type == "classification"

        def forward(atoms, bonds, bond_atoms, atom_mask, bond_mask):
            graph = flatten(atoms, bonds, bond_atoms, atom_mask, bond_mask)
            fingerprint = mpnn.bn(mpnn.agg(mpnn.message_passing(graph), graph.batch))
            out = mpnn.predictor.train_step(fingerprint) if logits else mpnn.predictor(fingerprint)
            return out[..., 0] if out.dim() == 3 else out      # MVE/evidential/quantile: the mean
        return forward

    def weights(self) -> dict[str, Any]:
        return self.mpnn.state_dict()

    @property
    def fingerprint(self) -> str:
        """The featuriser's identity: graphs of another featuriser are refused (see :meth:`check`)."""
        return f"chemprop-{self.featurizer_name}"

    def check(self, graph: Any) -> None:
        if graph.fingerprint != self.fingerprint:
            raise IGInputError(f"this molecule was featurized by {graph.fingerprint!r}, but the chemprop model "
                               f"{self.name} reads {self.fingerprint!r}; featurize it with model.featurize")

    def task_index(self, task: str | int | None) -> int:
        """A task given by name or position (default: the first)."""
        return task_position(list(self.tasks), task)
