"""Adaptive Simpson integration on a nested α grid: every node, once evaluated, is kept.

Each example owns a grid of (a, m, c) intervals. F is known at every node, so an
interval's completeness error |Simpson estimate − (F(c) − F(a))| is exact, and
refinement bisects where the error is, reusing a, m and c. Where the grid starts
is someone else's choice: two intervals (plain adaptive) or a grid planned from
forward passes (:mod:`igkit.attribution.planned`).
"""
from __future__ import annotations

import torch

from igkit.attribution.path import PathEvaluator, PathIntegral

#: the coarsest grid: two Simpson intervals, five path points (the floor every example gets)
INITIAL_INTERVALS = 2


class NestedGrid:
    """One example's nested grid and what is known at its nodes."""

    def __init__(self, n_intervals: int = INITIAL_INTERVALS):
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
        w: dict[float, float] = {}
        for a, m, c in self.intervals:
            h = (c - a) / 6
            w[a] = w.get(a, 0.0) + h
            w[m] = w.get(m, 0.0) + 4 * h
            w[c] = w.get(c, 0.0) + h
        return w


def allowed_error(gap: float, score_input: float, score_baseline: float, tolerance: float,
                  floor: float) -> float:
    """The completeness gap accepted: ``tolerance`` of |ΔF|, but never less than the absolute
    floor ``floor × tolerance × max(|F(x)|, |F(b)|)`` (a near-zero ΔF has no meaningful ratio)."""
    return max(tolerance * abs(gap), floor * tolerance * max(abs(score_input), abs(score_baseline)))


def refinement(grid: NestedGrid, tolerance: float, floor: float, max_steps: int) -> list[float]:
    """Nodes to add for one example: bisect every interval above its fair share of the error."""
    allowed = grid.allowed(tolerance, floor)
    if grid.absolute_error() <= allowed:
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
    evaluate_nodes(ev, grids, [[a for a in g.nodes() if a not in g.grads] for g in grids])
    while True:
        todo = [refinement(g, tolerance, floor, max_steps) for g in grids]
        if not any(todo):
            return
        evaluate_nodes(ev, grids, todo)


def evaluate_nodes(ev: PathEvaluator, grids: list[NestedGrid], nodes: list[list[float]]) -> None:
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
        grid = grids[e]
        grid.scores[a] = scores[r:r + K]
        grid.mean_scores[a] = sum(score_values[r:r + K]) / K
        grid.mean_dots[a] = sum(dot_values[r:r + K]) / K
        grid.grads[a] = tuple(g[r:r + K] for g in grads_cat)


def collect(ev: PathEvaluator, grids: list[NestedGrid], return_interior: bool) -> PathIntegral:
    """The Simpson integrals of every example's final grid, and its saturation curve."""
    B, K, dev = ev.batch, ev.n_baselines, ev.device
    integrals = [torch.zeros((K, B, *x.shape[1:]), dtype=x.dtype, device=dev) for x in ev.xs]
    interior: list[list[torch.Tensor]] = [[] for _ in ev.xs]
    alphas, path_scores = [], []
    for e, grid in enumerate(grids):
        nodes = grid.nodes()
        weights = grid.weights()
        for i in range(len(ev.xs)):
            integrals[i][:, e] = sum(weights[a] * grid.grads[a][i] for a in nodes)
            if return_interior:
                interior[i].append(torch.stack([grid.grads[a][i].mean(0) for a in nodes]))
        alphas.append(torch.tensor(nodes, dtype=torch.float64))
        path_scores.append(torch.stack([grid.scores[a].mean() for a in nodes]).to(ev.xs[0].dtype))
    dtype = ev.xs[0].dtype
    return PathIntegral(
        integrals=tuple(integrals),
        score_input=torch.stack([g.scores[1.0][0] for g in grids]).to(dtype),
        score_baseline=torch.stack([g.scores[0.0].mean() for g in grids]).to(dtype),
        alphas=alphas,
        path_scores=path_scores,
        steps=max(len(a) for a in alphas) * K,
        interior=interior if return_interior else [],  # grids differ per example: lists
    )
