"""The study's attribution variants: per method and molecule, atom scores three ways (see run_study.py).

Methods are named as the study's columns: ``ig`` (zero baseline), ``ig_presence`` (IG over
each atom's presence), ``ig_carbon``, ``ig_mean``, ``ig_zero_carbon`` (baselines),
``saliency``, ``grad_x_input``, ``smoothgrad``, ``occlusion``; ``_prob`` explains the
probability instead of the logit.
"""
from __future__ import annotations

import numpy as np
import torch

from igkit import attribute, attribution_auc, integrated_gradients
from igkit.plugins.molecules.batching import pack, size_batches
from igkit.plugins.molecules.checkpoint import MoleculeModel
from igkit.plugins.molecules.explanation import with_pairs
from igkit.plugins.molecules.featurize import MolGraph
from igkit.plugins.molecules.multifragment import gated_forward
from igkit.plugins.molecules.weave import carbon_skeleton


def plain_forward(model: MoleculeModel, score: str = "logit"):
    """``forward(atoms, pairs, pair_index, atom_mask, pair_mask)``: the network's logit or probability."""
    net = model.net
    squash = score == "probability"

    def forward(atoms, pairs, pair_index, atom_mask, pair_mask):
        out = net(atoms, pairs, pair_index, atom_mask, pair_mask)
        return torch.sigmoid(out) if squash else out

    return forward


def attributions(models: list[MoleculeModel], graphs: list[MolGraph], methods: list[str], *, steps: int = 48,
                 mean_features: tuple[np.ndarray, np.ndarray] | None = None, per_call: int = 16
                 ) -> dict[str, list[tuple[np.ndarray, np.ndarray | None]]]:
    """Per method and molecule: (atom scores with pairs folded in, own-only scores or None, scores
    with only the bonded pairs folded in or None).

    Several models (an ensemble) average their attributions.
    """
    out: dict[str, list] = {m: [None] * len(graphs) for m in methods}
    for idx in size_batches(graphs, per_call):
        gs = [graphs[i] for i in idx]
        batch = pack(gs)
        sums: dict[str, list] = {}
        for model in models:
            model.net.eval()
            for name in methods:
                values = _one_method(model, batch, name, steps, mean_features)
                if name not in sums:
                    sums[name] = values
                else:
                    sums[name] = [tuple(a + b for a, b in zip(x, y)) for x, y in zip(sums[name], values)]
        for name in methods:
            for b, (i, g) in enumerate(zip(idx, gs)):
                entry = sums[name][b]
                if len(entry) == 1:        # already per atom
                    out[name][i] = (entry[0][:g.n_atoms], None, None)
                else:
                    a, p = entry[0][:g.n_atoms], entry[1][:g.n_pairs]
                    out[name][i] = (with_pairs(g, a, p), a, with_pairs(g, a, np.where(g.bonded, p, 0.0)))
    return out


def _one_method(model, batch, name, steps, mean_features):
    score = "probability" if name.endswith("_prob") else "logit"
    base = name[:-5] if name.endswith("_prob") else name
    structure = batch.structure
    if base == "ig_presence":
        gate = batch.atom_mask.clone()
        r = integrated_gradients(gated_forward(model, score), gate, target=0, steps=steps,
                                 forward_args=(batch.atoms, batch.pairs, *structure))
        return [(r.attributions[b].detach().numpy(),) for b in range(len(batch))]
    if base == "occlusion":
        return _occlusion(model, batch, score)
    forward = plain_forward(model, score)
    if base in ("ig", "ig_carbon", "ig_mean", "ig_zero_carbon"):
        if base == "ig":
            baselines = None
        elif base == "ig_carbon":
            baselines = carbon_skeleton(batch.atoms, batch.pairs)
        elif base == "ig_zero_carbon":      # two baselines, attributions averaged
            atoms, pairs = carbon_skeleton(batch.atoms, batch.pairs)
            baselines = (torch.stack([torch.zeros_like(atoms), atoms]), torch.stack([torch.zeros_like(pairs), pairs]))
        else:
            ma, mp = (torch.as_tensor(m, dtype=torch.float32) for m in mean_features)
            baselines = (batch.atom_mask[..., None] * ma, batch.pair_mask[..., None] * mp)
        r = integrated_gradients(forward, batch.inputs, baselines, target=0, steps=steps, forward_args=structure)
        a, p = r.attribution_tuple
    else:
        a, p = attribute(base, forward, batch.inputs, target=0, forward_args=structure)
    a, p = a.detach().sum(-1).numpy(), p.detach().sum(-1).numpy()
    return [(a[b], p[b]) for b in range(len(batch))]


@torch.no_grad()
def _occlusion(model, batch, score):
    forward = gated_forward(model, score)
    full = forward(batch.atom_mask, batch.atoms, batch.pairs, *batch.structure)[:, 0]
    out = []
    n = batch.atoms.shape[1]
    for b in range(len(batch)):
        k = int(batch.atom_mask[b].sum())
        gate = batch.atom_mask[b].repeat(k, 1)
        gate[torch.arange(k), torch.arange(k)] = 0
        rep = lambda t: t[b:b + 1].expand(k, *t.shape[1:])  # noqa: E731
        scores = forward(gate, rep(batch.atoms), rep(batch.pairs), rep(batch.pair_index), rep(batch.atom_mask),
                         rep(batch.pair_mask))[:, 0]
        drop = np.zeros(n)
        drop[:k] = (full[b] - scores).numpy()
        out.append((drop,))
    return out


def auroc(pairs_list, truths) -> tuple[float, float, float]:
    """Mean per-molecule atom AUROC: (with pairs, own only, with bonded pairs only; NaN when not defined)."""
    def mean(values):
        v = np.array(values, dtype=float)
        return float(np.nanmean(v)) if not np.isnan(v).all() else float("nan")

    return tuple(mean([attribution_auc(entry[k], t) if entry[k] is not None else np.nan
                       for entry, t in zip(pairs_list, truths)]) for k in range(3))
