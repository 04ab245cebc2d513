"""Plan the path with forward passes, then integrate in one gradient pass.

F(α) along the path needs only forward passes (no backward, no stored activations),
and many α fit in one batched pass. The plan evaluates F on a uniform grid of
``PLAN_INTERVALS + 1`` points and runs adaptive Simpson refinement on a surrogate:
∇F·(x − b) = dF/dα, estimated from the planned F by finite differences. The grid
that refinement reaches on the surrogate is where the gradients are evaluated, all
of them in one pass; the real completeness check then refines only intervals the
surrogate misjudged (kinks finer than the plan), reusing every node. The saving is
passes (two instead of one per refinement round); the price is the plan's forward
points. Where a pass costs far more than its points (a recurrent model) that trade
pays; on the feed-forward bench models it did not (see :func:`plans_first`).
"""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import torch

from igkit.attribution.guard import modules_behind
from igkit.attribution.nested_grid import NestedGrid
from igkit.attribution.path import PathEvaluator, default_batch_size
from igkit.errors import IGInputError, IgkitWarning

#: uniform intervals of the forward-only plan (17 points, ends included: they give F(b) and F(x)).
#: 32 intervals found no better grids on the bench models and cost twice the forward passes
PLAN_INTERVALS = 16
#: the surrogate aims at this fraction of the allowed error (0.25 and 0.5 only added gradient points
#: on the bench models: the real check, not the surrogate's margin, catches what the plan cannot see)
PLAN_SAFETY = 1.0
#: relative change (to the largest |F| on the path) of F at the same α that marks a random forward;
#: batched passes of another size differ by float rounding only (~1e-7)
NONDETERMINISTIC_RTOL = 1e-3


def plans_first(plan: str, ev: PathEvaluator) -> bool:
    """Whether to plan: asked for, or (auto) for a recurrent model when one example's plan fits in
    one default-sized pass (the default size, not the one given: ``batch_size`` never changes the
    answer).

    The plan trades 17 forward points for passes. A recurrent layer runs its sequence step by step
    in every pass, so a pass costs far more than its points: on the PTB LSTM a gradient point cost
    15 ms alone and 1.9 ms in a pass of 65, and planning took 1.34× less time than the plain grid.
    On the small CNN and the weave model passes are cheap and the plan's points were not: planning
    took 0.86× and 0.81× the plain grid's speed (bench/README.md, case 3), so auto does not plan."""
    fits = (PLAN_INTERVALS + 1) * ev.n_baselines <= default_batch_size(ev.xs)
    return plan == "forward" or (plan == "auto" and fits and _recurrent(ev.forward))


def _recurrent(forward: Callable[..., torch.Tensor]) -> bool:
    """Whether a recurrent layer (LSTM, GRU, RNN) is behind ``forward`` (as far as igkit can see)."""
    return any(isinstance(m, torch.nn.RNNBase) for module in modules_behind(forward)
               for m in module.modules())


def planned_grids(ev: PathEvaluator, tolerance: float, floor: float, max_steps: int
                  ) -> tuple[list[NestedGrid], list[bool], list[dict[float, float]]]:
    """One forward-only pass over every example's plan: each example's grid, whether its F is
    flat (constant along the path to within the allowed error: nothing for a plan to see), and
    the planned F (α -> F, mean over baselines) for :func:`check_deterministic`."""
    B, K, dev = ev.batch, ev.n_baselines, ev.device
    plan = torch.linspace(0.0, 1.0, PLAN_INTERVALS + 1, dtype=torch.float64, device=dev)
    P = plan.numel()
    ex = torch.arange(B, device=dev).repeat_interleave(K * P)
    ks = torch.arange(K, device=dev).repeat_interleave(P).repeat(B)
    al = plan.repeat(B * K)
    scores = ev.scores_at(ex, ks, al).double().reshape(B, K, P).mean(1).cpu().numpy()
    alphas = [j / PLAN_INTERVALS for j in range(P)]
    grids, flat = [], []
    for e in range(B):
        grid, is_flat = surrogate_grid(alphas, scores[e], tolerance, floor, max_steps)
        grids.append(grid)
        flat.append(is_flat)
    return grids, flat, [dict(zip(alphas, row.tolist())) for row in scores]


def check_deterministic(grids: list[NestedGrid], planned: list[dict[float, float]]) -> None:
    """F at the same α twice (plan, then gradient pass) must agree: otherwise the forward is random
    (dropout left on) and no step count can make the attributions add up."""
    for e, (grid, plan) in enumerate(zip(grids, planned)):
        scale = max(abs(v) for v in plan.values())
        for a, again in grid.mean_scores.items():
            first = plan.get(a)
            if first is not None and abs(again - first) > NONDETERMINISTIC_RTOL * scale:
                raise IGInputError(
                    f"the model gave two different scores at the same point of the path of example {e} "
                    f"(alpha={a:.4g}: {first:.6g}, then {again:.6g}): its forward is not deterministic "
                    f"(dropout or batch norm in training mode?); call model.eval() and attribute again")


def surrogate_grid(alphas: list[float], scores: np.ndarray, tolerance: float, floor: float,
                   max_steps: int) -> tuple[NestedGrid, bool]:
    """Adaptive Simpson refinement run on the plan (dF/dα by finite differences), down to the
    plan's resolution; the grid it reaches, its surrogate values cleared, and whether F is flat."""
    spacing = alphas[1] - alphas[0]
    slopes = np.gradient(scores, spacing, edge_order=2)
    grid = NestedGrid()
    grid.mean_scores = dict(zip(alphas, scores.tolist()))
    grid.mean_dots = dict(zip(alphas, slopes.tolist()))
    allowed = grid.allowed(tolerance, floor)
    flat = float(np.abs(np.diff(scores)).sum()) <= allowed
    while grid.absolute_error() > PLAN_SAFETY * allowed:
        errors = grid.interval_errors()
        share = PLAN_SAFETY * allowed / len(grid.intervals)
        budget = (max_steps - len(grid.nodes())) // 2
        chosen = [j for j, (a, _, c) in enumerate(grid.intervals)
                  if errors[j] > share and c - a > 2 * spacing * (1 + 1e-9)][:max(budget, 0)]
        if not chosen:
            break
        grid.split(chosen)
    grid.mean_scores, grid.mean_dots = {}, {}
    return grid, flat


def warn_if_flat(grids: list[NestedGrid], flat: list[bool]) -> None:
    """F constant along a path: nothing to attribute, or gradients that cancel (say which)."""
    zero, cancel = [], []
    for e, (grid, is_flat) in enumerate(zip(grids, flat)):
        if is_flat:
            moving = any(bool(torch.any(g != 0)) for grads in grid.grads.values() for g in grads)
            (cancel if moving else zero).append(e)
    if zero:
        warnings.warn(f"examples {zero[:10]}: F is constant along the path from the baseline to the input "
                      f"and every gradient on it is 0, so there is nothing to attribute (all attributions "
                      f"are 0); check the target and the baseline", IgkitWarning, stacklevel=4)
    if cancel:
        warnings.warn(f"examples {cancel[:10]}: F is constant along the path but its gradients are not: "
                      f"the attributions cancel, and the completeness check cannot judge their accuracy; "
                      f"compare with a fixed rule (steps=N) to be sure", IgkitWarning, stacklevel=4)

