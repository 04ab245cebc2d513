"""Adaptive Simpson integration on a nested α grid: every node, once evaluated, is kept.

Each example owns a grid of (a, m, c) intervals. F is known at every node, so an
interval's completeness error |Simpson estimate − (F(c) − F(a))| is exact, and
refinement bisects where the error is, reusing a, m and c. The grid lives in a
variable u mapped to α by the grid's path (:mod:`igkit.attribution.warp`): the identity
(plain adaptive), or a map planned from forward passes (:mod:`igkit.attribution.planned`)
that spends the points where F moves. Nodes whose weight is zero (the eased ends of a
planned path) are never evaluated: their F comes from the plan.
"""
from __future__ import annotations

import math

import torch

from igkit.attribution.path import PathEvaluator, PathIntegral, raise_non_finite
from igkit.attribution.warp import PlannedPath, UniformPath

#: the coarsest grid: two Simpson intervals, five path points (the floor every example gets)
INITIAL_INTERVALS = 2


class NestedGrid:
    """One example's nested grid and what is known at its nodes."""

    def __init__(self, n_intervals: int = INITIAL_INTERVALS, path: UniformPath | PlannedPath | None = None,
                 cancellation_limit: float | None = None):
        edges = [i / n_intervals for i in range(n_intervals + 1)]
        self.intervals = [(a, (a + c) / 2, c) for a, c in zip(edges[:-1], edges[1:])]
        self.path = UniformPath() if path is None else path   # u -> α; nodes are keyed by u
        # if set, Σ |interval error| must also stay within this many times the allowed error: a
        # coarse grid whose intervals' errors cancel in the sum has not converged per feature
        self.cancellation_limit = cancellation_limit
        # the error bookkeeping runs on plain floats (means over baselines: every estimate is
        # linear in them); tiny tensors here cost more than a small model's passes
        self.mean_scores: dict[float, float] = {}     # u -> F, mean over baselines
        self.mean_dots: dict[float, float] = {}       # u -> dF/du = ∇F·(x − b)·dα/du, mean over baselines
        self.grads: dict[float, tuple[torch.Tensor, ...]] = {}  # u -> ∇F per input [K, *features]

    def nodes(self) -> list[float]:
        return sorted({a for tri in self.intervals for a in tri})

    def unevaluated(self) -> list[float]:
        """Nodes whose gradient is still needed (an eased end's F came from the plan: its weight is 0)."""
        return [u for u in self.nodes() if u not in self.mean_dots]

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

    def settled(self, allowed: float) -> bool:
        """The completeness gap is within ``allowed`` (and, with a cancellation limit, not by luck)."""
        if self.absolute_error() > allowed:
            return False
        return self.cancellation_limit is None or \
            sum(self.interval_errors()) <= self.cancellation_limit * allowed

    def gap(self) -> float:
        return self.mean_scores[1.0] - self.mean_scores[0.0]

    def allowed(self, tolerance: float, floor: float) -> float:
        return allowed_error(self.gap(), self.mean_scores[1.0], self.mean_scores[0.0], tolerance, floor)

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
        """The weight of ∇F at each node with a gradient: Simpson's in u, times dα/du."""
        w: dict[float, float] = {}
        for a, m, c in self.intervals:
            h = (c - a) / 6
            w[a] = w.get(a, 0.0) + h
            w[m] = w.get(m, 0.0) + 4 * h
            w[c] = w.get(c, 0.0) + h
        return {u: weight * self.path.speed(u) for u, weight in w.items() if u in self.grads}


def allowed_error(gap: float, score_input: float, score_baseline: float, tolerance: float,
                  floor: float) -> float:
    """The completeness gap accepted: ``tolerance`` of |ΔF|, but never less than the absolute
    floor ``floor × tolerance × max(|F(x)|, |F(b)|)`` (a near-zero ΔF has no meaningful ratio)."""
    return max(tolerance * abs(gap), floor * tolerance * max(abs(score_input), abs(score_baseline)))


def refinement(grid: NestedGrid, tolerance: float, floor: float, max_steps: int) -> list[float]:
    """Nodes to add for one example: bisect every interval above its fair share of the error."""
    allowed = grid.allowed(tolerance, floor)
    if grid.settled(allowed):
        return []
    budget = (max_steps - len(grid.nodes())) // 2
    if budget < 1:
        return []
    errors = grid.interval_errors()
    fair_share = allowed / len(grid.intervals)
    order = sorted(range(len(errors)), key=lambda j: -errors[j])
    chosen = [j for j in order if errors[j] > fair_share][:budget] or order[:1]
    return grid.split(chosen)


def refine_until_converged(ev: PathEvaluator, grids: list[NestedGrid], tolerance: float, floor: float,
                           max_steps: int) -> None:
    """Evaluate every grid's unevaluated nodes, then refine round by round (one pass per round)."""
    evaluate_nodes(ev, grids, [g.unevaluated() for g in grids])
    while True:
        todo = [refinement(g, tolerance, floor, max_steps) for g in grids]
        if not any(todo):
            return
        evaluate_nodes(ev, grids, todo)


def evaluate_nodes(ev: PathEvaluator, grids: list[NestedGrid], nodes: list[list[float]]) -> None:
    """Evaluate F and ∇F at new nodes (u) of every example, all examples packed into shared passes.

    Only plain floats come back to the grids' bookkeeping: F and dF/du = ∇F·(x − b)·dα/du per node,
    whose finiteness is checked here (a NaN or ±inf in any gradient element survives the dot)."""
    K, dev = ev.n_baselines, ev.device
    points = [(e, u, grids[e].path.alpha(u)) for e, new in enumerate(nodes) for u in new]
    if not points:
        return
    ex = [e for e, _, _ in points for _ in range(K)]
    alphas = [a for _, _, a in points for _ in range(K)]
    ex_t = torch.tensor(ex, device=dev)
    k_t = torch.tensor(list(range(K)) * len(points), device=dev)
    scores, dots, grads = [], [], [[] for _ in ev.xs]
    for sl, s, g in ev.rows(ex_t, k_t, torch.tensor(alphas, dtype=torch.float64, device=dev), checked=False):
        dot = 0
        for i, gi in enumerate(g):
            d = ev.differences(i, ex_t[sl], k_t[sl])
            dot = dot + (gi.reshape(gi.shape[0], -1).double() * d).sum(1)
            grads[i].append(gi)
        scores.append(s)
        dots.append(dot)
    score_values, dot_values = _joined(scores).tolist(), _joined(dots).tolist()
    for r, (score, dot) in enumerate(zip(score_values, dot_values)):
        if not (math.isfinite(score) and math.isfinite(dot)):
            raise_non_finite("score" if not math.isfinite(score) else "gradient", alphas[r], ex[r])
    joined = [_joined(g) for g in grads]
    for j, (e, u, _) in enumerate(points):
        r, grid = j * K, grids[e]
        grid.mean_scores[u] = sum(score_values[r:r + K]) / K
        grid.mean_dots[u] = sum(dot_values[r:r + K]) / K * grid.path.speed(u)
        grid.grads[u] = tuple(g[r:r + K] for g in joined)


def _joined(chunks: list[torch.Tensor]) -> torch.Tensor:
    return chunks[0] if len(chunks) == 1 else torch.cat(chunks)


def collect(ev: PathEvaluator, grids: list[NestedGrid], return_interior: bool) -> PathIntegral:
    """The Simpson integrals of every example's final grid, and its saturation curve at the nodes
    where gradients were evaluated (their number is the example's step count)."""
    B, K, dev, dtype = ev.batch, ev.n_baselines, ev.device, ev.xs[0].dtype
    integrals = [torch.zeros((K, B, *x.shape[1:]), dtype=x.dtype, device=dev) for x in ev.xs]
    interior: list[list[torch.Tensor]] = [[] for _ in ev.xs]
    alphas, path_scores = [], []
    for e, grid in enumerate(grids):
        nodes = [u for u in grid.nodes() if u in grid.grads]
        weights = grid.weights()
        w = torch.tensor([weights[u] for u in nodes], dtype=torch.float64, device=dev)
        for i in range(len(ev.xs)):
            stacked = torch.stack([grid.grads[u][i] for u in nodes])   # [nodes, K, *features]
            integrals[i][:, e] = torch.tensordot(w.to(stacked.dtype), stacked, dims=1)
            if return_interior:
                interior[i].append(stacked.mean(1))
        alphas.append(torch.tensor([grid.path.alpha(u) for u in nodes], dtype=torch.float64))
        path_scores.append(torch.tensor([grid.mean_scores[u] for u in nodes], dtype=torch.float64).to(dtype))
    return PathIntegral(
        integrals=tuple(integrals),
        score_input=torch.tensor([g.mean_scores[1.0] for g in grids], dtype=torch.float64).to(dtype),
        score_baseline=torch.tensor([g.mean_scores[0.0] for g in grids], dtype=torch.float64).to(dtype),
        alphas=alphas,
        path_scores=path_scores,
        steps=max(len(a) for a in alphas) * K,
        interior=interior if return_interior else [],  # grids differ per example: lists
    )
