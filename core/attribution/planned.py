"""Plan the path with forward passes, then integrate where F moves.

F(α) along the path needs only forward passes (no backward, no stored activations),
and many α fit in one batched pass. The plan evaluates F on a uniform grid of
``PLAN_INTERVALS + 1`` points and turns it into a map u -> α (:mod:`igkit.attribution.warp`)
under which equal steps of u cover equal shares of |ΔF|. The nested adaptive Simpson grid then
runs in u, starting from as many intervals as the plain grid would (:mod:`igkit.attribution.first_grid`):
its first gradient points already sit where F moves, its eased ends need no gradient (F there
comes from the plan), and the completeness check refines only what the plan could not see,
reusing every node. On the bench's small ReLU CNN this took 0.59 of the default
grid's gradient points (bench/README.md, case 3). Where F is flat the plan has nothing to say
and the plain grid is used.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from igkit.attribution.nested_grid import INITIAL_INTERVALS, NestedGrid, allowed_error
from igkit.attribution.path import PathEvaluator, default_batch_size
from igkit.attribution.warp import PlannedPath
from igkit.errors import IGInputError, IgkitWarning

#: uniform intervals of the forward-only plan (F at α = 0 and 1 are among its points)
PLAN_INTERVALS = 16
#: share of the uniform density in the planned map: no stretch of the path is left without points,
#: so gradients that move where F does not (they cancel) are still integrated
UNIFORM_SHARE = 0.15
#: Σ |interval error| may reach this many times the allowed error (their sum, the completeness gap,
#: stays within it): a coarse planned grid can pass by cancellation, and its attributions are then
#: less accurate than the gap says. 4 kept every bench model's worst per-feature error below the plain
#: grid's (CNN 0.027 against 0.055) for 76 gradient points on the CNN's 8 examples (none: 60, 0.100)
CANCELLATION_LIMIT = 4.0
#: forward-only points per example and baseline: the plan, and F(x) once more to catch a random forward
PLAN_FORWARD_POINTS = PLAN_INTERVALS + 2
#: relative change (to the largest |F| on the path) of F at the same α that marks a random forward;
#: batched passes of another size differ by float rounding only (~1e-7)
NONDETERMINISTIC_RTOL = 1e-3


def plans_first(plan: str, ev: PathEvaluator, modules: list[torch.nn.Module]) -> bool:
    """Whether to plan: asked for, or (auto) when a recurrent layer is among the ``modules`` behind
    the forward (:func:`igkit.attribution.guard.modules_behind`) and one example's plan fits in
    one default-sized pass (the default size, not the one given: whether to plan never depends on
    ``batch_size``).

    The plan trades 18 forward points for gradient points: on the bench's models where F moves it
    needed the fewest (CNN 96 against the default's 164, weave 142 against 234), but in seconds it
    lost to the default on the small CNN (0.81×), the weave model (0.95×) and where F is flat
    (GoogLeNet with random weights, 0.39×), and the small GPT-2 was too close to call (1.08×; 1.05×,
    1.09× and 0.97× in the runs before): bench/README.md, case 3. A recurrent layer runs its
    sequence step by step in every pass, so a pass costs far more than its points; there planning
    from 4 intervals in u took 0.87× the 5-point start's seconds, so auto plans for recurrent
    models only."""
    fits = PLAN_FORWARD_POINTS * ev.n_baselines <= default_batch_size(ev.xs)
    return plan == "forward" or (plan == "auto" and fits and _recurrent(modules))


def _recurrent(modules: list[torch.nn.Module]) -> bool:
    """Whether a recurrent layer (LSTM, GRU, RNN) is among ``modules`` (as far as igkit can see)."""
    return any(isinstance(m, torch.nn.RNNBase) for module in modules for m in module.modules())


def planned_grids(ev: PathEvaluator, tolerance: float, floor: float, evaluate_ends: bool = False,
                  intervals: int = INITIAL_INTERVALS) -> tuple[list[NestedGrid], list[bool]]:
    """One forward-only pass over every example's plan: each example's grid of ``intervals`` Simpson
    intervals on its planned path (F at the ends filled in, unless ``evaluate_ends``: their
    gradients are then wanted too), and whether its F is flat (constant along the path to within
    the allowed error)."""
    B, K, dev = ev.batch, ev.n_baselines, ev.device
    plan = torch.linspace(0.0, 1.0, PLAN_INTERVALS + 1, dtype=torch.float64, device=dev)
    plan = torch.cat([plan, plan[-1:]])   # F(x) twice: a random forward shows as two values
    P = plan.numel()
    ex = torch.arange(B, device=dev).repeat_interleave(K * P)
    ks = torch.arange(K, device=dev).repeat_interleave(P).repeat(B)
    scores = ev.scores_at(ex, ks, plan.repeat(B * K)).double().reshape(B, K, P)
    check_deterministic(scores[..., -2], scores[..., -1], scores.abs().amax(2))
    scores = scores[..., :-1]
    means = scores.mean(1).cpu().numpy()
    grids, flat = [], []
    for e in range(B):
        gap, top, bottom = means[e, -1] - means[e, 0], means[e, -1], means[e, 0]
        flat.append(float(np.abs(np.diff(means[e])).sum()) <= allowed_error(gap, top, bottom, tolerance, floor))
        grids.append(NestedGrid(intervals) if flat[-1] else _planned_grid(means[e], evaluate_ends, intervals))
    return grids, flat


def _planned_grid(means: np.ndarray, evaluate_ends: bool, intervals: int) -> NestedGrid:
    """A grid on the path planned from F (``means``: F at the plan points, mean over baselines)."""
    grid = NestedGrid(intervals, path=PlannedPath.from_plan(means, UNIFORM_SHARE),
                      cancellation_limit=CANCELLATION_LIMIT)
    for u, j in ((0.0, 0), (1.0, PLAN_INTERVALS)):
        grid.mean_scores[u] = float(means[j])
        if not evaluate_ends:
            grid.mean_dots[u] = 0.0   # dα/du = 0 there: the gradient's weight is 0
    return grid


def check_deterministic(first: torch.Tensor, again: torch.Tensor, scale: torch.Tensor) -> None:
    """F at the same α twice in the plan must agree: otherwise the forward is random (dropout left
    on) and no step count can make the attributions add up. Arguments are [B, K]."""
    bad = ((first - again).abs() > NONDETERMINISTIC_RTOL * scale).nonzero()
    if bad.numel():
        e, k = bad[0].tolist()
        raise IGInputError(
            f"the model gave two different scores at the same point of the path of example {e} "
            f"(alpha=1: {float(first[e, k]):.6g}, then {float(again[e, k]):.6g}): its forward is not "
            f"deterministic (dropout or batch norm in training mode?); call model.eval() and attribute again")


def warn_if_flat(grids: list[NestedGrid], flat: list[bool]) -> None:
    """F constant along a path: nothing to attribute, or gradients that cancel (say which)."""
    zero, cancel = [], []
    for e, (grid, is_flat) in enumerate(zip(grids, flat)):
        if is_flat:
            moving = any(bool(torch.any(c != 0)) for c in grid.contributions)
            (cancel if moving else zero).append(e)
    if zero:
        warnings.warn(f"examples {zero[:10]}: F is constant along the path from the baseline to the input "
                      f"and every gradient on it is 0 where the input differs from the baseline, so there is "
                      f"nothing to attribute (all attributions are 0); check the target and the baseline",
                      IgkitWarning, stacklevel=4)
    if cancel:
        warnings.warn(f"examples {cancel[:10]}: F is constant along the path but its gradients are not: "
                      f"the attributions cancel, and the completeness check cannot judge their accuracy; "
                      f"compare with a fixed rule (steps=N) to be sure", IgkitWarning, stacklevel=4)

