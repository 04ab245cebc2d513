"""Checks for AND rules (several fragments): does the default attribution find each fragment, and does
the model still call a molecule positive once one fragment is deleted?

:func:`default_attributions` is IG as igkit explains molecules by default (the logit, from the zero
and carbon-skeleton baselines averaged) over molecules featurized already; the evaluation scores it
with :func:`fragments_found`, and :func:`fragment_deletion` is the shortcut check of the README's
"Multi-fragment rules" study (``scripts/molecules_study``).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from igkit import integrated_gradients

from .batching import pack, size_batches
from .checkpoint import MoleculeModel
from .defaults import DEFAULT_BASELINE, DEFAULT_SCORE
from .explanation import with_pairs
from .featurize import MolGraph
from .tasks import Task, fragments
from .weave import baseline_function, score_function


def gated_forward(model: MoleculeModel, score: str = "logit") -> Callable[..., torch.Tensor]:
    """``forward(gate, atoms, pairs, pair_index, atom_mask, pair_mask)``: atom presence as an input.

    gate ``[B, N]`` scales each atom's mask and g_i·g_j each pair's mask; gate 1 is the
    molecule, gate 0 the empty molecule.
    """
    net = model.net
    squash = score == "probability"

    def forward(gate, atoms, pairs, pair_index, atom_mask, pair_mask):
        g = gate * atom_mask
        gi = torch.gather(g, 1, pair_index[..., 0])
        gj = torch.gather(g, 1, pair_index[..., 1])
        out = net(atoms, pairs, pair_index, g, pair_mask * gi * gj)
        return torch.sigmoid(out) if squash else out

    return forward


def default_attributions(model: MoleculeModel, graphs: list[MolGraph], *, score: str = DEFAULT_SCORE,
                         baseline: str = DEFAULT_BASELINE, steps: int = 64
                         ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per molecule (atom attributions, pair attributions): IG of ``score`` from ``baseline``,
    igkit's defaults for molecules (fixed ``steps`` Gauss–Legendre points)."""
    forward = score_function(model.net, score)
    out: list = [None] * len(graphs)
    for idx in size_batches(graphs, 16):
        gs = [graphs[i] for i in idx]
        batch = pack(gs)
        r = integrated_gradients(forward, batch.inputs, baseline_function(baseline), target=0,
                                 steps=steps, forward_args=batch.structure)
        a, p = (t.detach().sum(-1).numpy() for t in r.attribution_tuple)
        for b, (i, g) in enumerate(zip(idx, gs)):
            out[i] = (a[b, :g.n_atoms], p[b, :g.n_pairs])
    return out


def default_atom_scores(model: MoleculeModel, graphs: list[MolGraph], **options: Any) -> list[np.ndarray]:
    """Atom scores the way igkit explains molecules by default: IG of ``DEFAULT_SCORE`` from
    ``DEFAULT_BASELINE``, each atom's own share plus half of each of its pairs."""
    return [with_pairs(g, a, p) for g, (a, p) in zip(graphs, default_attributions(model, graphs, **options))]


def fragments_found(task: Task, mol: Any, scores: np.ndarray) -> list[bool]:
    """Per fragment of the rule: is its atoms' mean score above the mean of the atoms outside the rule?"""
    truth = task.truth(mol)
    rest = scores[~truth].mean() if (~truth).any() else 0.0
    return [bool(scores[sorted(part.atoms(mol))].mean() > rest) for part in fragments(task.rule)]


@torch.no_grad()
def fragment_deletion(model: MoleculeModel, task: Task, graphs: list[MolGraph]) -> dict[str, float]:
    """Counterfactuals: delete the atoms of one fragment (all its matches); how often does the
    positive prediction survive? A model of the AND rule should call every such molecule negative."""
    parts = fragments(task.rule)
    forward = gated_forward(model, "logit")
    kept = []
    for g in graphs:
        batch = pack([g])
        survives = []
        for part in parts:
            gate = batch.atom_mask.clone()
            gate[0, sorted(part.atoms(g.mol))] = 0
            survives.append(float(forward(gate, batch.atoms, batch.pairs, *batch.structure)[0, 0] > 0))
        kept.append(survives)
    kept = np.array(kept)
    return {"still_positive_after_deleting_one_fragment": float(kept.mean()),
            **{f"still_positive_without_part{k + 1}": float(kept[:, k].mean()) for k in range(len(parts))}}
