"""Domain-neutral checks of attributions against the model (ablation, AOPC) and against
ground truth (mask share, ROC-AUC, Kendall's tau)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from igkit.errors import IGInputError


@torch.no_grad()
def ablation_curve(score: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, order: torch.Tensor,
                   ablate: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *, per_step: int,
                   n_steps: int, batch_size: int = 16) -> torch.Tensor:
    """Scores after removing the first ``k·per_step`` features of ``order`` for k = 0..n_steps.

    ``x`` is one example (no batch dimension); ``ablate(x, feature_indices)`` returns
    a copy with those features removed; ``score(batch)`` returns ``[n]`` scores.
    """
    if per_step < 1 or n_steps < 1:
        raise IGInputError(f"per_step and n_steps must be ≥ 1, got {per_step} and {n_steps}")
    if order.numel() < per_step * n_steps:
        raise IGInputError(f"the ordering has {order.numel()} features but {per_step}×{n_steps} "
                           f"ablations were asked for")
    variants = [ablate(x, order[: k * per_step]) for k in range(n_steps + 1)]
    scores = [score(torch.stack(variants[i:i + batch_size])) for i in range(0, len(variants), batch_size)]
    return torch.cat(scores)


def aopc(curve: torch.Tensor) -> float:
    """Area over the perturbation curve (Samek et al.): mean of f(x) − f(x after k steps), k = 0..L."""
    return float((curve[0] - curve).mean())


def fraction_inside(importance: torch.Tensor | np.ndarray, mask: torch.Tensor | np.ndarray) -> float:
    """Share of (non-negative) importance that falls inside ``mask`` (localisation)."""
    imp = np.asarray(importance, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    if imp.shape != m.shape:
        raise IGInputError(f"importance shape {imp.shape} and mask shape {m.shape} differ")
    if (imp < 0).any():
        raise IGInputError("fraction_inside needs non-negative importance; pass |attributions|")
    total = imp.sum()
    return float(imp[m].sum() / total) if total > 0 else float("nan")


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_vals = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def attribution_auc(scores: torch.Tensor | np.ndarray, truth: torch.Tensor | np.ndarray) -> float:
    """ROC-AUC of ``scores`` at separating ``truth`` features from the rest (ties count half).

    NaN when ``truth`` is all true or all false: the AUC is undefined there.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    t = np.asarray(truth, dtype=bool).ravel()
    if s.shape != t.shape:
        raise IGInputError(f"{s.size} scores for {t.size} ground-truth flags")
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    return float((ranks[t].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def kendall_tau(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Kendall's tau-b between two score vectors (ties handled); NaN if either is constant."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise IGInputError(f"kendall_tau got {x.size} and {y.size} values")
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    iu = np.triu_indices(len(x), k=1)
    dx, dy = dx[iu], dy[iu]
    denom = np.sqrt((dx != 0).sum() * (dy != 0).sum())
    return float((dx * dy).sum() / denom) if denom > 0 else float("nan")
