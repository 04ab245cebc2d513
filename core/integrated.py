"""Integrated Gradients: fixed quadrature rules and adaptive integration to a tolerance."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch

from .baselines import Baselines, as_input_tuple, resolve_baselines
from .errors import IGInputError, IgkitWarning
from .guard import warn_if_incomplete, warn_if_training
from .options import DEFAULT_FIXED_STEPS, DEFAULT_FLOOR, DEFAULT_MAX_STEPS, DEFAULT_RULE, DEFAULT_TOLERANCE
from .path import PathEvaluator
from .quadrature import quadrature
from .result import IGResult
from .targets import Target, per_example_targets

ADAPTIVE_METHOD = "adaptive_simpson"
INITIAL_INTERVALS = 2


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
    floor: float = DEFAULT_FLOOR,
    max_steps: int = DEFAULT_MAX_STEPS,
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
    that difference is tiny, or ``max_steps`` path points were used. ``steps`` or
    ``method`` ask for a fixed rule (default 50 Gauss–Legendre points). Tensors in
    ``forward_args`` whose first dimension is the batch size follow their example.
    """
    xs, is_tuple = as_input_tuple(inputs)
    bs = resolve_baselines(baselines, xs)
    targets = per_example_targets(target, xs[0].shape[0])
    warn_if_training(forward)
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
        path = _integrate_adaptive(evaluator, float(tolerance), float(floor), int(max_steps),
                                   return_interior)
        used_method = ADAPTIVE_METHOD
    attributions = tuple(
        ((x.unsqueeze(0) - b) * integral).mean(0) for x, b, integral in zip(xs, bs, path.integrals))
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
              "max_steps": None if fixed else max_steps},
    )
    if fixed:
        warn_if_incomplete(result.completeness_error, int(steps))
    else:
        _warn_if_not_converged(result, tolerance, floor, max_steps)
    return result


@dataclass
class _PathIntegral:
    """What an integration strategy hands back: ∫ gradients per (baseline, example), and F."""

    integrals: tuple[torch.Tensor, ...]          # each [K, B, *features]
    score_input: torch.Tensor                    # [B]
    score_baseline: torch.Tensor                 # [B], mean over baselines
    alphas: list[torch.Tensor]
    path_scores: list[torch.Tensor]
    steps: int
    interior: list = field(default_factory=list)  # per input: [B, S, *features] or a list per example


def _integrate_fixed(ev: PathEvaluator, alphas: torch.Tensor, weights: torch.Tensor,
                     return_interior: bool) -> _PathIntegral:
    B, K, S = ev.batch, ev.n_baselines, alphas.numel()
    dev = ev.device
    s_idx = torch.arange(S, device=dev).repeat_interleave(B * K)
    e_idx = torch.arange(B, device=dev).repeat_interleave(K).repeat(S)
    k_idx = torch.arange(K, device=dev).repeat(S * B)
    alpha_rows = alphas.to(dev)[s_idx]
    integrals = [torch.zeros((K * B, *x.shape[1:]), dtype=x.dtype, device=dev) for x in ev.xs]
    interior = [torch.zeros((B * S, *x.shape[1:]), dtype=x.dtype, device=dev)
                for x in ev.xs] if return_interior else []
    path = torch.zeros(S * B * K, dtype=torch.float64, device=dev)
    for sl, scores, grads in ev.rows(e_idx, k_idx, alpha_rows):
        path[sl] = scores.double()
        slot = k_idx[sl] * B + e_idx[sl]
        w = weights.to(dev)[s_idx[sl]]
        for i, g in enumerate(grads):
            integrals[i].index_add_(0, slot, g * w.to(g.dtype).reshape(-1, *([1] * (g.dim() - 1))))
            if return_interior:
                interior[i].index_add_(0, e_idx[sl] * S + s_idx[sl], g / K)
    score_input, score_baseline = _end_scores(ev)
    per_example = path.reshape(S, B, K).mean(2)
    return _PathIntegral(
        integrals=tuple(t.reshape(K, B, *t.shape[1:]) for t in integrals),
        score_input=score_input,
        score_baseline=score_baseline,
        alphas=[alphas.clone() for _ in range(B)],
        path_scores=[per_example[:, e].to(score_input.dtype) for e in range(B)],
        steps=S * K,
        interior=[t.reshape(B, S, *t.shape[1:]) for t in interior],
    )


def _end_scores(ev: PathEvaluator) -> tuple[torch.Tensor, torch.Tensor]:
    """F at the inputs (α = 1) and at every baseline (α = 0), in one pass: a pass costs a dispatch."""
    B, K, dev = ev.batch, ev.n_baselines, ev.device
    ex = torch.arange(B, device=dev)
    rows = torch.cat([ex, ex.repeat_interleave(K)])
    baseline = torch.cat([torch.zeros_like(ex), torch.arange(K, device=dev).repeat(B)])
    alpha = torch.cat([torch.ones(B, device=dev), torch.zeros(B * K, device=dev)])
    scores = ev.scores_at(rows, baseline, alpha)
    return scores[:B], scores[B:].reshape(B, K).mean(1)


class _AdaptivePath:
    """One example's nested grid for adaptive Simpson integration.

    Intervals are (a, m, c) triples. Because F is known at every node, each
    interval's completeness error |Simpson estimate − (F(c) − F(a))| is exact,
    so refinement goes where the error is; splitting reuses a, m and c.
    """

    def __init__(self, n_intervals: int):
        edges = [i / n_intervals for i in range(n_intervals + 1)]
        self.intervals = [(a, (a + c) / 2, c) for a, c in zip(edges[:-1], edges[1:])]
        self.scores: dict[float, torch.Tensor] = {}   # α -> F per baseline [K]
        # the error bookkeeping runs on plain floats (means over baselines: every estimate is
        # linear in them); tiny tensors here cost more than a small model's passes
        self.mean_scores: dict[float, float] = {}     # α -> F, mean over baselines
        self.mean_dots: dict[float, float] = {}       # α -> ∇F·(x − b), mean over baselines
        self.grads: dict[float, tuple[torch.Tensor, ...]] = {}  # α -> per input [K, *features]

    def nodes(self) -> list[float]:
        return sorted({a for tri in self.intervals for a in tri})

    def interval_errors(self) -> list[float]:
        return [abs(self._estimate(tri) - self._exact(tri)) for tri in self.intervals]

    def _estimate(self, tri) -> float:
        a, m, c = tri
        return (c - a) / 6 * (self.mean_dots[a] + 4 * self.mean_dots[m] + self.mean_dots[c])

    def _exact(self, tri) -> float:
        return self.mean_scores[tri[2]] - self.mean_scores[tri[0]]

    def absolute_error(self) -> float:
        """|Simpson sum − ΔF|: the completeness gap of the current grid."""
        return abs(sum(self._estimate(tri) for tri in self.intervals) - self.gap())

    def gap(self) -> float:
        return self.mean_scores[1.0] - self.mean_scores[0.0]

    def split(self, chosen: list[int]) -> list[float]:
        """Bisect the chosen intervals; return the new nodes they need."""
        new_nodes, keep = [], []
        chosen_set = set(chosen)
        for j, (a, m, c) in enumerate(self.intervals):
            if j in chosen_set:
                left, right = (a, (a + m) / 2, m), (m, (m + c) / 2, c)
                keep += [left, right]
                new_nodes += [left[1], right[1]]
            else:
                keep.append((a, m, c))
        self.intervals = keep
        return new_nodes

    def weights(self) -> dict[float, float]:
        w: dict[float, float] = {}
        for a, m, c in self.intervals:
            h = (c - a) / 6
            w[a] = w.get(a, 0.0) + h
            w[m] = w.get(m, 0.0) + 4 * h
            w[c] = w.get(c, 0.0) + h
        return w


def _integrate_adaptive(ev: PathEvaluator, tolerance: float, floor: float, max_steps: int,
                        return_interior: bool) -> _PathIntegral:
    B, K, dev = ev.batch, ev.n_baselines, ev.device
    paths = [_AdaptivePath(INITIAL_INTERVALS) for _ in range(B)]
    _evaluate_nodes(ev, paths, [p.nodes() for p in paths])
    while True:
        todo: list[list[float]] = []
        for p in paths:
            todo.append(_refinement(p, tolerance, floor, max_steps))
        if not any(todo):
            break
        _evaluate_nodes(ev, paths, todo)
    integrals = [torch.zeros((K, B, *x.shape[1:]), dtype=x.dtype, device=dev) for x in ev.xs]
    interior: list[list[torch.Tensor]] = [[] for _ in ev.xs]
    alphas, path_scores = [], []
    for e, p in enumerate(paths):
        nodes = p.nodes()
        weights = p.weights()
        for i in range(len(ev.xs)):
            integrals[i][:, e] = sum(weights[a] * p.grads[a][i] for a in nodes)
            if return_interior:
                interior[i].append(torch.stack([p.grads[a][i].mean(0) for a in nodes]))
        alphas.append(torch.tensor(nodes, dtype=torch.float64))
        path_scores.append(torch.stack([p.scores[a].mean() for a in nodes]).to(ev.xs[0].dtype))
    dtype = ev.xs[0].dtype
    score_input = torch.stack([p.scores[1.0][0] for p in paths]).to(dtype)
    score_baseline = torch.stack([p.scores[0.0].mean() for p in paths]).to(dtype)
    return _PathIntegral(
        integrals=tuple(integrals),
        score_input=score_input,
        score_baseline=score_baseline,
        alphas=alphas,
        path_scores=path_scores,
        steps=max(len(a) for a in alphas) * K,
        interior=interior if return_interior else [],  # grids differ per example: lists
    )


def _refinement(p: _AdaptivePath, tolerance: float, floor: float, max_steps: int) -> list[float]:
    """Nodes to add for one example: bisect every interval above its fair share of the error."""
    allowed = allowed_error(p.gap(), p.mean_scores[1.0], p.mean_scores[0.0], tolerance, floor)
    if p.absolute_error() <= allowed:
        return []
    budget = (max_steps - len(p.nodes())) // 2
    if budget < 1:
        return []
    errors = p.interval_errors()
    fair_share = allowed / len(p.intervals)
    order = sorted(range(len(errors)), key=lambda j: -errors[j])
    chosen = [j for j in order if errors[j] > fair_share][:budget] or order[:1]
    return p.split(chosen)


def _evaluate_nodes(ev: PathEvaluator, paths: list[_AdaptivePath], nodes: list[list[float]]) -> None:
    """Evaluate F and ∇F at new nodes of every example, all examples packed into shared passes."""
    K, dev = ev.n_baselines, ev.device
    ex, ks, al = [], [], []
    for e, new in enumerate(nodes):
        for a in new:
            for k in range(K):
                ex.append(e)
                ks.append(k)
                al.append(a)
    if not ex:
        return
    ex_t = torch.tensor(ex, device=dev)
    k_t = torch.tensor(ks, device=dev)
    al_t = torch.tensor(al, dtype=torch.float64, device=dev)
    scores = torch.empty(len(ex), dtype=torch.float64, device=dev)
    dots = torch.empty(len(ex), dtype=torch.float64, device=dev)
    grads: list[list[torch.Tensor]] = [[] for _ in ev.xs]
    for sl, s, g in ev.rows(ex_t, k_t, al_t):
        scores[sl] = s.double()
        dot = torch.zeros(s.shape[0], dtype=torch.float64, device=dev)
        for i, gi in enumerate(g):
            diff = ev.xs[i][ex_t[sl]] - ev.bs[i][k_t[sl], ex_t[sl]]
            dot += (gi * diff).reshape(gi.shape[0], -1).double().sum(1)
            grads[i].append(gi)
        dots[sl] = dot
    grads_cat = [torch.cat(g) for g in grads]
    score_values, dot_values = scores.tolist(), dots.tolist()
    for r in range(0, len(ex), K):
        e, a = ex[r], al[r]
        p = paths[e]
        p.scores[a] = scores[r:r + K]
        p.mean_scores[a] = sum(score_values[r:r + K]) / K
        p.mean_dots[a] = sum(dot_values[r:r + K]) / K
        p.grads[a] = tuple(g[r:r + K] for g in grads_cat)


def allowed_error(gap: float, score_input: float, score_baseline: float, tolerance: float,
                  floor: float) -> float:
    """The completeness gap accepted: ``tolerance`` of |ΔF|, but never less than the absolute
    floor ``floor × tolerance × max(|F(x)|, |F(b)|)`` (a near-zero ΔF has no meaningful ratio)."""
    return max(tolerance * abs(gap), floor * tolerance * max(abs(score_input), abs(score_baseline)))


#: ``meta["converged_by"]`` values: which test of :func:`allowed_error` passed (None: neither)
RELATIVE, ABSOLUTE_FLOOR = "relative tolerance", "absolute floor"


def converged(result: IGResult, tolerance: float, floor: float) -> torch.Tensor:
    """Per example: whether the completeness gap is within :func:`allowed_error`.

    The one meaning of converged: within ``tolerance`` of |ΔF| OR within the absolute floor.
    Which one held is recorded as ``result.meta["converged_by"]`` (see :data:`RELATIVE`), so a
    large relative error passed by the floor (ΔF tiny) is never mistaken for a precise result.
    """
    gap = (result.score_input - result.score_baseline).double()
    scale = torch.maximum(result.score_input.abs(), result.score_baseline.abs()).double()
    error = result.completeness_delta.double().abs()
    relative = error <= tolerance * gap.abs() * (1 + 1e-6)
    by_floor = error <= floor * tolerance * scale * (1 + 1e-6)
    result.meta["converged_by"] = [RELATIVE if r else ABSOLUTE_FLOOR if f else None
                                   for r, f in zip(relative.tolist(), by_floor.tolist())]
    return relative | by_floor


def _check_adaptive_options(tolerance: float, floor: float, max_steps: int) -> None:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance > 0:
        raise IGInputError(f"tolerance must be a relative completeness error > 0 (e.g. 0.01), "
                           f"got {tolerance!r}")
    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or floor < 0:
        raise IGInputError(f"floor must be ≥ 0 (a fraction of tolerance × the score's magnitude), "
                           f"got {floor!r}")
    minimum = 2 * INITIAL_INTERVALS + 1
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < minimum:
        raise IGInputError(f"max_steps must be a whole number ≥ {minimum} (the adaptive grid starts "
                           f"with {minimum} path points), got {max_steps!r}")


def _warn_if_not_converged(result: IGResult, tolerance: float, floor: float, max_steps: int) -> None:
    ok = converged(result, tolerance, floor)
    result.meta["converged"] = ok.tolist()
    bad = (~ok).nonzero().flatten().tolist()
    if bad:
        worst = float(result.completeness_error[bad].max())
        warnings.warn(f"examples {bad[:10]} did not reach tolerance {tolerance} within max_steps="
                      f"{max_steps} path points (worst relative completeness error {worst:.3g}); "
                      f"raise max_steps or check the model for discontinuities", IgkitWarning, stacklevel=3)
