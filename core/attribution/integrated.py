"""Integrated Gradients: fixed quadrature rules and adaptive integration to a tolerance."""
from __future__ import annotations

import warnings
from typing import Callable

import torch

from igkit.attribution.baselines import Baselines, as_input_tuple, resolve_baselines
from igkit.errors import IGInputError, IgkitWarning
from igkit.attribution.guard import (check_baselines, check_examples, check_model_matches, modules_behind,
                                     warn_if_incomplete, warn_if_training)
from igkit.options import (DEFAULT_FIXED_STEPS, DEFAULT_FLOOR, DEFAULT_MAX_STEPS, DEFAULT_PLAN, DEFAULT_RULE,
                      DEFAULT_TOLERANCE, FEATURE_TOLERANCE_FACTOR, MAX_PATH_POINTS)
from igkit.attribution.first_grid import PLAIN, first_grid_kind, first_grids, first_intervals
from igkit.attribution.nested_grid import INITIAL_INTERVALS, allowed_error, collect, refine_until_converged
from igkit.attribution.path import PathEvaluator, PathIntegral
from igkit.attribution.planned import planned_grids, plans_first, warn_if_flat
from igkit.attribution.quadrature import quadrature
from igkit.attribution.result import IGResult
from igkit.attribution.targets import Target, per_example_targets
from igkit.options import check_plan

ADAPTIVE_METHOD = "adaptive_simpson"


def integrated_gradients(
    forward: Callable[..., torch.Tensor],
    inputs: torch.Tensor | tuple[torch.Tensor, ...],
    baselines: Baselines = None,
    *,
    target: Target = None,
    steps: int | None = None,
    method: str | None = None,
    batch_size: int | None = None,
    tolerance: float | None = None,
    feature_tolerance: float | None = None,
    floor: float = DEFAULT_FLOOR,
    max_steps: int = DEFAULT_MAX_STEPS,
    plan: str = DEFAULT_PLAN,
    return_interior: bool = False,
    forward_args: tuple = (),
) -> IGResult:
    """Attribute ``forward``'s score to ``inputs`` by integrating gradients along b → x.

    ``forward(*scaled_inputs, *forward_args)`` returns ``[batch]`` scores or
    ``[batch, classes]`` (then ``target`` picks). Several inputs are scaled with one
    α. ``baselines`` default to zeros; a stack ``[K, *input_shape]`` (or a callable
    returning one) averages the attributions of K baselines.

    Integration (the same defaults as every igkit command, see :mod:`igkit.options`):
    with neither ``steps`` nor ``method`` (nor a ``tolerance``) the α grid is refined
    where the completeness error lives until it is at most ``tolerance`` (default 1%)
    of |F(x) − F(b)|, or at most ``floor`` × ``tolerance`` × max(|F(x)|, |F(b)|) where
    that difference is tiny, and until the estimated per-feature error (relative L2 of the
    attributions, ``meta["feature_error"]``) is at most ``feature_tolerance`` (default
    :data:`~igkit.options.FEATURE_TOLERANCE_FACTOR` × ``tolerance``; ``math.inf``: not judged), or
    ``max_steps`` path points were used. ``steps`` or
    ``method`` ask for a fixed rule (default 50 Gauss–Legendre points). Tensors in
    ``forward_args`` whose first dimension is the batch size follow their example.
    """
    xs, is_tuple = as_input_tuple(inputs)
    check_examples(xs)
    bs = resolve_baselines(baselines, xs)
    check_baselines(bs)
    targets = per_example_targets(target, xs[0].shape[0])
    modules = modules_behind(forward)
    warn_if_training(modules)
    check_model_matches(modules, xs)
    evaluator = PathEvaluator(forward, xs, bs, targets, forward_args, batch_size)
    fixed = tolerance is None and (steps is not None or method is not None)
    if fixed:
        steps = DEFAULT_FIXED_STEPS if steps is None else steps
        method = DEFAULT_RULE if method is None else method
        alphas, weights = quadrature(method, steps)
        path = _integrate_fixed(evaluator, torch.as_tensor(alphas), torch.as_tensor(weights),
                                return_interior)
        used_method = method
    else:
        tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
        _check_adaptive_options(tolerance, floor, max_steps)
        feature_tolerance = check_feature_tolerance(feature_tolerance, tolerance)
        planned = plans_first(check_plan(plan), evaluator, modules)
        path, plan, first_grid = _integrate_adaptive(evaluator, float(tolerance), float(floor), int(max_steps),
                                                     feature_tolerance, plan, planned, return_interior)
        used_method = ADAPTIVE_METHOD
    attributions = path.attributions
    interior = None
    if return_interior:
        interior = tuple([g[e] for e in range(evaluator.batch)] for g in path.interior)
    result = IGResult(
        attributions=attributions if is_tuple else attributions[0],
        score_input=path.score_input,
        score_baseline=path.score_baseline,
        alphas=path.alphas,
        path_scores=path.path_scores,
        steps=path.steps,
        method=used_method,
        interior=interior,
        meta={"gradient_evaluations": evaluator.evaluations, "n_baselines": evaluator.n_baselines,
              "tolerance": None if fixed else tolerance, "floor": None if fixed else floor,
              "max_steps": None if fixed else max_steps, "plan": None if fixed else plan,
              "first_grid": None if fixed else first_grid,
              "feature_tolerance": None if fixed else feature_tolerance,
              "feature_error": None if fixed else path.feature_errors,
              "costs": evaluator.costs()},
    )
    if fixed:
        warn_if_incomplete(result.completeness_error, int(steps))
    else:
        _warn_if_not_converged(result, tolerance, floor, max_steps)
        _warn_if_features_not_within(path.features_within, path.feature_errors, feature_tolerance, max_steps)
    return result


def _integrate_fixed(ev: PathEvaluator, alphas: torch.Tensor, weights: torch.Tensor,
                     return_interior: bool) -> PathIntegral:
    B, K, S = ev.batch, ev.n_baselines, alphas.numel()
    dev = ev.device
    alphas, weights = alphas.to(dev), weights.to(dev)
    integrals = [torch.zeros((K * B, *x.shape[1:]), dtype=x.dtype, device=dev) for x in ev.xs]
    interior = [torch.zeros((B * S, *x.shape[1:]), dtype=x.dtype, device=dev)
                for x in ev.xs] if return_interior else []
    path = torch.zeros(S * B * K, dtype=torch.float64, device=dev)
    # rows run step-major (α, then example, then baseline); their indices are built one pass at a
    # time, so memory stays flat in the step count
    for start in range(0, S * B * K, ev.batch_size):
        rows = torch.arange(start, min(start + ev.batch_size, S * B * K), device=dev)
        s_idx, e_idx, k_idx = rows // (B * K), rows % (B * K) // K, rows % K
        for sl, scores, grads in ev.rows(e_idx, k_idx, alphas[s_idx]):   # one pass or several (sizer)
            path[rows[sl]] = scores.double()
            slot = k_idx[sl] * B + e_idx[sl]
            w = weights[s_idx[sl]]
            for i, g in enumerate(grads):
                integrals[i].index_add_(0, slot, g * w.to(g.dtype).reshape(-1, *([1] * (g.dim() - 1))))
                if return_interior:
                    interior[i].index_add_(0, e_idx[sl] * S + s_idx[sl], g / K)
    score_input, score_baseline = ev.end_scores()
    per_example = path.reshape(S, B, K).mean(2)
    return PathIntegral(
        attributions=tuple(((x.unsqueeze(0) - b) * t.reshape(K, B, *t.shape[1:])).mean(0)
                           for x, b, t in zip(ev.xs, ev.bs, integrals)),
        score_input=score_input,
        score_baseline=score_baseline,
        alphas=[alphas.cpu().clone() for _ in range(B)],
        path_scores=[per_example[:, e].to(score_input.dtype) for e in range(B)],
        steps=S * K,
        interior=[t.reshape(B, S, *t.shape[1:]) for t in interior],
    )


def _integrate_adaptive(ev: PathEvaluator, tolerance: float, floor: float, max_steps: int,
                        feature_tolerance: float, plan: str, planned: bool, return_interior: bool
                        ) -> tuple[PathIntegral, str, str]:
    """Adaptive Simpson on a path ``planned`` with forward passes first, or (auto) on a first grid that
    suits the size of a path point (:mod:`igkit.attribution.first_grid`), or (off) on 5 points."""
    if planned:
        # asked for, the plan spends the fewest gradient points; chosen by auto, it starts from as many
        # intervals as the plain grid would, for fewer refinement rounds
        intervals = first_intervals(ev, max_steps) if plan == "auto" else INITIAL_INTERVALS
        grids, flat = planned_grids(ev, tolerance, floor, evaluate_ends=return_interior, intervals=intervals)
        refine_until_converged(ev, grids, tolerance, floor, max_steps, feature_tolerance, return_interior)
        warn_if_flat(grids, flat)
        return collect(ev, grids, return_interior, tolerance, floor), "forward", "planned"
    kind = first_grid_kind(ev, max_steps) if plan == "auto" else PLAIN
    grids = first_grids(ev, kind, evaluate_ends=return_interior)
    refine_until_converged(ev, grids, tolerance, floor, max_steps, feature_tolerance, return_interior)
    return collect(ev, grids, return_interior, tolerance, floor), "off", kind


#: ``meta["converged_by"]`` values: which test of :func:`igkit.attribution.nested_grid.allowed_error` passed (None: neither)
RELATIVE, ABSOLUTE_FLOOR = "relative tolerance", "absolute floor"


def converged(result: IGResult, tolerance: float, floor: float) -> list[bool]:
    """Per example: whether the completeness gap is within :func:`igkit.attribution.nested_grid.allowed_error`.

    The one meaning of converged: within ``tolerance`` of |ΔF| OR within the absolute floor.
    Which one held is recorded as ``result.meta["converged_by"]`` (see :data:`RELATIVE`), so a
    large relative error passed by the floor (ΔF tiny) is never mistaken for a precise result.
    Plain floats: for one example, a dozen tensor operations would cost more than a small model's pass.
    """
    slack = 1 + 1e-6
    held = []
    for delta, top, bottom in zip(result.completeness_delta.double().tolist(), result.score_input.double().tolist(),
                                  result.score_baseline.double().tolist()):
        error = abs(delta)
        within = error <= allowed_error(top - bottom, top, bottom, tolerance, floor) * slack
        held.append(None if not within else RELATIVE if error <= tolerance * abs(top - bottom) * slack
                    else ABSOLUTE_FLOOR)
    result.meta["converged_by"] = held
    return [by is not None for by in held]


def _check_adaptive_options(tolerance: float, floor: float, max_steps: int) -> None:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance > 0:
        raise IGInputError(f"tolerance must be a relative completeness error > 0 (e.g. 0.01), "
                           f"got {tolerance!r}")
    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or floor < 0:
        raise IGInputError(f"floor must be ≥ 0 (a fraction of tolerance × the score's magnitude), "
                           f"got {floor!r}")
    minimum = 2 * INITIAL_INTERVALS + 1
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or not minimum <= max_steps <= \
            MAX_PATH_POINTS:
        raise IGInputError(f"max_steps must be a whole number from {minimum} (the adaptive grid starts "
                           f"with {minimum} path points) to {MAX_PATH_POINTS}, got {max_steps!r}")


def check_feature_tolerance(feature_tolerance: float | None, tolerance: float) -> float:
    """The per-feature error accepted: ``feature_tolerance``, by default
    :data:`~igkit.options.FEATURE_TOLERANCE_FACTOR` × ``tolerance`` (``math.inf``: not judged)."""
    if feature_tolerance is None:
        return FEATURE_TOLERANCE_FACTOR * float(tolerance)
    if isinstance(feature_tolerance, bool) or not isinstance(feature_tolerance, (int, float)) \
            or not feature_tolerance > 0:
        raise IGInputError(f"feature_tolerance must be a relative per-feature error > 0 (e.g. 0.02; "
                           f"math.inf: not judged), got {feature_tolerance!r}")
    return float(feature_tolerance)


def _warn_if_features_not_within(within: list[bool], errors: list[float], feature_tolerance: float,
                                 max_steps: int) -> None:
    bad = [e for e, held in enumerate(within) if not held]
    if bad:
        warnings.warn(f"examples {bad[:10]}: the estimated per-feature error ({max(errors[e] for e in bad):.3g} "
                      f"at worst) is above feature_tolerance={feature_tolerance:g} within max_steps="
                      f"{max_steps} path points; raise max_steps, or feature_tolerance if coarser "
                      f"attributions will do", IgkitWarning, stacklevel=3)


def _warn_if_not_converged(result: IGResult, tolerance: float, floor: float, max_steps: int) -> None:
    ok = converged(result, tolerance, floor)
    result.meta["converged"] = ok
    bad = [e for e, held in enumerate(ok) if not held]
    if bad:
        worst = float(result.completeness_error[bad].max())
        warnings.warn(f"examples {bad[:10]} did not reach tolerance {tolerance} within max_steps="
                      f"{max_steps} path points (worst relative completeness error {worst:.3g}); "
                      f"raise max_steps or check the model for discontinuities", IgkitWarning, stacklevel=3)
