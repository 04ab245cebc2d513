"""Adaptive Simpson integration on a nested α grid: every node, once evaluated, is kept.

Each example owns a grid of (a, m, c) intervals. F is known at every node, so an
interval's completeness error |Simpson estimate − (F(c) − F(a))| is exact, and
refinement bisects where the error is, reusing a, m and c. The grid lives in a
variable u mapped to α by the grid's path (:mod:`igkit.attribution.warp`): the identity
(plain adaptive), or a map planned from forward passes (:mod:`igkit.attribution.planned`)
that spends the points where F moves. Nodes whose weight is zero (the eased ends of a
planned path) are never evaluated: their F comes from the plan.

Completeness bounds the sum of the attributions, not each one: interval errors in directions that
cancel in the sum are invisible to it (on the bench's ReLU CNN a 9-point grid passed at 1% with a
per-feature error of 0.207). So each interval also carries a per-feature error estimate
(:meth:`NestedGrid.feature_errors`), and a grid settles only once their root sum of squares is
within its own tolerance too.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from igkit.attribution.path import PathEvaluator, PathIntegral, default_batch_size, raise_non_finite
from igkit.attribution.warp import PlannedPath, UniformPath

#: the coarsest grid: two Simpson intervals, five path points (the floor every example gets)
INITIAL_INTERVALS = 2
#: about how much one bisection divides an interval's Simpson error where F is smooth (each half's
#: error shrinks 32×)
SIMPSON_GAIN = 16
#: the most times an interval is bisected in one refinement round
MAX_BISECTIONS = 3
#: below this gain per bisection an interval is bisected once per round
MIN_GAIN = 4
#: elements of the per-feature estimate's products computed at once (16 MiB of float32)
FEATURE_CHUNK_ELEMENTS = 2 ** 22


class NestedGrid:
    """One example's nested grid and what is known at its nodes."""

    def __init__(self, n_intervals: int = INITIAL_INTERVALS, path: UniformPath | PlannedPath | None = None,
                 cancellation_limit: float | None = None):
        edges = [i / n_intervals for i in range(n_intervals + 1)]
        self.intervals = [(a, (a + c) / 2, c) for a, c in zip(edges[:-1], edges[1:])]
        # a bisected interval's pieces, by their ends: what their error shrank from, and how many
        # bisections they are from it (the gain one more bisection may be expected to bring)
        self.origins: dict[tuple[float, float], tuple[float, int]] = {}
        self.path = UniformPath() if path is None else path   # u -> α; nodes are keyed by u
        # if set, Σ |interval error| must also stay within this many times the allowed error: a
        # coarse grid whose intervals' errors cancel in the sum has not converged per feature
        self.cancellation_limit = cancellation_limit
        # the error bookkeeping runs on plain floats (means over baselines: every estimate is
        # linear in them); tiny tensors here cost more than a small model's passes
        self.mean_scores: dict[float, float] = {}     # u -> F, mean over baselines
        self.mean_dots: dict[float, float] = {}       # u -> dF/du = ∇F·(x − b)·dα/du, mean over baselines
        # u -> ∇F per input [K, *features], kept only when the interior gradients are asked for (the
        # answer and its error estimate are made of the contributions below: one vector per node
        # is stored, not K + 1)
        self.grads: dict[float, tuple[torch.Tensor, ...]] = {}
        self.keep_gradients = False
        # what each node adds to the attributions per unit of weight, ∇F·(x − b), mean over baselines:
        # per input [evaluated nodes, features], a row per node in the order they were evaluated
        # (u -> its row): the attributions and their per-feature error estimate are both made of it
        self.contributions: tuple[torch.Tensor, ...] = ()
        self.contribution_rows: dict[float, int] = {}
        self.feature_tolerance = math.inf   # the per-feature error accepted (inf: not judged)
        self._norms_of: tuple[int, int] | None = None   # the grid state _norms were computed for
        self._norms: tuple[list[float], float] = ([], 0.0)

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

    def feature_errors(self, absolute: float = 0.0) -> list[float]:
        """Each interval's per-feature error estimate, relative to the attributions' norm, or to what
        makes ``absolute`` (an error accepted whatever the ratio: :meth:`absolute_floor`) the feature
        tolerance where that is larger.

        Each estimate is the norm, feature by feature (times x − b, mean over baselines), of the
        larger of two differences between rules: what the bisection that made the interval changed
        (:meth:`_richardson`) and Simpson's rule against the trapezoid's (:meth:`_simpson_minus_trapezoid`).
        Either alone missed errors on its own: where a ReLU switches inside an interval the second
        understates Simpson's error (a bench CNN example estimated 0.028, off by 0.062), and where two
        coarse grids miss a narrow peak alike the first sees no change (a tanh step of width 0.05 at 9
        points). Where F is smooth both overstate it (on the bench's molecules 2–10×), which
        :data:`igkit.options.FEATURE_TOLERANCE_FACTOR` allows for. All intervals and the attributions
        come from one product with the nodes' stacked contributions (kept by :func:`evaluate_nodes`):
        a small model's round costs less than a dozen tensor operations per interval would. Empty
        before any node is evaluated."""
        if not self.contribution_rows:
            return []
        norms, scale = self._feature_norms()
        scale = max(scale, absolute / self.feature_tolerance)
        return [n / scale if scale > 0 else 0.0 for n in norms]

    def feature_error(self, absolute: float) -> tuple[float, bool]:
        """The per-feature error estimate of the whole grid relative to the attributions' norm, and
        whether it is within the feature tolerance (or within ``absolute``)."""
        if not self.contribution_rows:
            return 0.0, True
        norms, scale = self._feature_norms()
        total = root_sum_square(norms)
        return (total / scale if scale > 0 else 0.0), total <= max(self.feature_tolerance * scale, absolute)

    def _feature_norms(self) -> tuple[list[float], float]:
        """Each interval's estimated error vector's norm, and the attributions' norm (computed once
        per grid: the last refinement round and :func:`collect` ask for the same one)."""
        state = (id(self.intervals), len(self.contribution_rows))
        if self._norms_of != state:
            self._norms, self._norms_of = self._compute_feature_norms(), state
        return self._norms

    def _compute_feature_norms(self) -> tuple[list[float], float]:
        index = self.contribution_rows
        n = len(self.intervals)
        coefficients = np.zeros((2 * n + 1, len(index)))
        for j, tri in enumerate(self.intervals):
            for row, rule in ((coefficients[j], self._richardson),
                              (coefficients[n + j], self._simpson_minus_trapezoid)):
                for u, weight in rule(tri).items():
                    row[index[u]] += weight
        coefficients[-1] = self.weight_row()
        first = self.contributions[0]
        rows = torch.from_numpy(coefficients).to(dtype=first.dtype, device=first.device)
        # a slice of the features at a time: the products stay near FEATURE_CHUNK_ELEMENTS whatever
        # the input (a 2,048-token context's would be hundreds of MiB at once)
        width = max(1, FEATURE_CHUNK_ELEMENTS // len(rows))
        squares = [0.0] * len(rows)
        for stacked in self.contributions:
            for start in range(0, stacked.shape[1], width):
                part = stacked if width >= stacked.shape[1] else stacked[:, start:start + width]
                norms = torch.linalg.vector_norm(rows @ part, dim=1, dtype=torch.float64).tolist()
                squares = [total + norm * norm for total, norm in zip(squares, norms)]
        norms = [math.sqrt(total) for total in squares]
        return [max(r, t) for r, t in zip(norms[:n], norms[n:2 * n])], norms[-1]

    def weight_row(self) -> np.ndarray:
        """:meth:`weights` in the order of the contributions' rows: the answer is this row times them."""
        row = np.zeros(len(self.contribution_rows))
        for u, weight in self.weights().items():
            row[self.contribution_rows[u]] = weight
        return row

    def add_contributions(self, nodes: list[float], blocks: tuple[torch.Tensor, ...]) -> None:
        """Keep the contributions of newly evaluated ``nodes`` (per input ``[nodes, features]``)."""
        start = len(self.contribution_rows)
        self.contribution_rows.update((u, start + r) for r, u in enumerate(nodes))
        self.contributions = blocks if not self.contributions else \
            tuple(torch.cat(pair) for pair in zip(self.contributions, blocks))

    def _simpson_minus_trapezoid(self, tri: tuple[float, float, float]) -> dict[float, float]:
        """The weight of ∇F at each node of ``tri`` in Simpson's rule minus the trapezoid rule's on
        its halves, both in u, applied to ∇F's change from the midpoint, ∇F − ∇F(m) (so a constant
        gradient gives 0 on a planned path too, whose dα/du varies): on a uniform path
        ((c − a)/12)·(2∇F(m) − ∇F(a) − ∇F(c)). An eased end has no gradient and dα/du = 0 there."""
        a, m, c = tri
        h = (c - a) / 12
        weights = {m: 0.0}
        for end in (a, c):
            if end in self.contribution_rows:
                weights[end] = -h * self.path.speed(end)
                weights[m] += h * self.path.speed(end)
        return weights

    def _richardson(self, tri: tuple[float, float, float]) -> dict[float, float]:
        """The weight of ∇F (times dα/du) at each node in Simpson's rule on ``tri`` and its sibling minus
        Simpson's rule on their parent, the interval of twice the width they halve (its nodes are
        kept: every interval is a bisection, or one of the first grid's, whose pairs make the
        coarsest Simpson grid): what one bisection changed there. Each of the two children is
        charged half of its square. None where the parent has an eased end: with dα/du = 0 there
        its rule is one point, not Simpson's, and the difference says little about Simpson's error
        (on a 2,048-token GPT-2 context it asked for 11 points where completeness took 5)."""
        a, m, c = tri
        width = c - a
        pa, pc = (a, c + width) if (a / (2 * width)).is_integer() else (a - width, c)
        if self.path.speed(pa) == 0 or self.path.speed(pc) == 0:
            return {}
        pm = (pa + pc) / 2
        weights: dict[float, float] = {}
        for (left, right), rule in (((pa, pm), 1.0), ((pm, pc), 1.0), ((pa, pc), -1.0)):
            h = (right - left) / 6 * rule / math.sqrt(2)
            for u, w in ((left, h), ((left + right) / 2, 4 * h), (right, h)):
                weights[u] = weights.get(u, 0.0) + w * self.path.speed(u)
        return weights

    def settled(self, allowed: float, features_within: bool = True) -> bool:
        """The completeness gap is within ``allowed`` (and, with a cancellation limit, not by luck),
        and the per-feature error estimate is within its tolerance (``features_within``:
        :meth:`feature_error`)."""
        if self.absolute_error() > allowed or not features_within:
            return False
        return self.cancellation_limit is None or \
            sum(self.interval_errors()) <= self.cancellation_limit * allowed

    def gap(self) -> float:
        return self.mean_scores[1.0] - self.mean_scores[0.0]

    def absolute_floor(self, tolerance: float, floor: float) -> float:
        return absolute_floor(self.mean_scores[1.0], self.mean_scores[0.0], tolerance, floor)

    def allowed(self, tolerance: float, floor: float) -> float:
        return allowed_error(self.gap(), self.mean_scores[1.0], self.mean_scores[0.0], tolerance, floor)

    def split(self, bisections: dict[int, int], errors: list[float]) -> list[float]:
        """Bisect each chosen interval (its index → how many times over; ``errors``: each interval's
        error now, what its pieces' errors are later compared with); return the new nodes."""
        new_nodes, keep = [], []
        for j, tri in enumerate(self.intervals):
            times = bisections.get(j, 0)
            pieces = _bisected(tri, times)
            keep += pieces
            new_nodes += sorted({u for piece in pieces for u in piece} - set(tri))
            if times:
                self.origins.update({(a, c): (errors[j], times) for a, _, c in pieces})
        self.intervals = keep
        return new_nodes

    def gain(self, j: int, error: float) -> float:
        """What one bisection of interval ``j`` (error ``error``) may be expected to divide its
        error by: :data:`SIMPSON_GAIN` until seen, then what its own bisection brought (at most
        that). A kink in F (a ReLU switching) leaves an interval's error shrinking about 2×."""
        a, _, c = self.intervals[j]
        if (a, c) not in self.origins or error <= 0:
            return SIMPSON_GAIN
        parent, times = self.origins[(a, c)]
        return min(SIMPSON_GAIN, (parent / 2 ** times / error) ** (1 / times))

    def weights(self) -> dict[float, float]:
        """The weight of ∇F at each node with a gradient: Simpson's in u, times dα/du."""
        w: dict[float, float] = {}
        for a, m, c in self.intervals:
            h = (c - a) / 6
            w[a] = w.get(a, 0.0) + h
            w[m] = w.get(m, 0.0) + 4 * h
            w[c] = w.get(c, 0.0) + h
        return {u: weight * self.path.speed(u) for u, weight in w.items() if u in self.contribution_rows}


def allowed_error(gap: float, score_input: float, score_baseline: float, tolerance: float,
                  floor: float) -> float:
    """The completeness gap accepted: ``tolerance`` of |ΔF|, but never less than the absolute
    floor ``floor × tolerance × max(|F(x)|, |F(b)|)`` (a near-zero ΔF has no meaningful ratio)."""
    return max(tolerance * abs(gap), absolute_floor(score_input, score_baseline, tolerance, floor))


def absolute_floor(score_input: float, score_baseline: float, tolerance: float, floor: float) -> float:
    """The error accepted whatever its ratio: ``floor × tolerance × max(|F(x)|, |F(b)|)``."""
    return floor * tolerance * max(abs(score_input), abs(score_baseline))


def root_sum_square(values: list[float]) -> float:
    """How per-interval errors add up over features: as independent errors do."""
    return math.sqrt(sum(v * v for v in values))


def refinement(grid: NestedGrid, tolerance: float, floor: float, max_steps: int,
               max_bisections: int = MAX_BISECTIONS) -> list[float]:
    """Nodes to add for one example: bisect every interval above its fair share of either error
    (completeness, or per feature: the share of a root sum of squares), as many times over as
    Simpson's completeness error is expected to need (:func:`bisections_needed`), at most
    ``max_bisections`` (:func:`bisections_per_round`)."""
    allowed = grid.allowed(tolerance, floor)
    judged = math.isfinite(grid.feature_tolerance)
    absolute = grid.absolute_floor(tolerance, floor)
    features = grid.feature_errors(absolute) if judged else []
    if grid.settled(allowed, not judged or grid.feature_error(absolute)[1]):
        return []
    room = max_steps - len(grid.nodes())
    errors = grid.interval_errors()
    fair_share = allowed / len(errors)
    over = [_times(error, fair_share) for error in errors]   # in units of an interval's fair share
    if features:
        feature_share = grid.feature_tolerance / math.sqrt(len(errors))
        over = [max(times, _times(feature, feature_share)) for times, feature in zip(over, features)]
    order = sorted(range(len(errors)), key=lambda j: -over[j])
    bisections: dict[int, int] = {}
    for j in [j for j in order if over[j] > 1] or order[:1]:
        times = min(max_bisections, bisections_needed(errors[j], fair_share, grid.gain(j, errors[j])))
        while times and _new_nodes(times) > room:
            times -= 1
        if not times:
            break
        bisections[j] = times
        room -= _new_nodes(times)
    return grid.split(bisections, errors)


def _times(error: float, share: float) -> float:
    """``error`` in units of ``share`` (a zero share: any error is infinitely over it)."""
    return error / share if share > 0 else (math.inf if error > 0 else 0.0)


def bisections_per_round(ev: PathEvaluator) -> int:
    """The most times an interval is bisected in one round: once where a default pass holds fewer
    points than the coarsest grid (one point fills a pass, so a round costs only its points and the
    fewest points win: at 2,048 tokens, bisecting as deep as Simpson's error asks took 9 points and
    202 s where 5 take 105–112 s, bench/README.md, case 3), else :data:`MAX_BISECTIONS`."""
    one_point_fills_a_pass = default_batch_size(ev.xs) // ev.n_baselines < 2 * INITIAL_INTERVALS + 1
    return 1 if one_point_fills_a_pass else MAX_BISECTIONS


def bisections_needed(error: float, share: float, gain: float = SIMPSON_GAIN) -> int:
    """How many times to bisect an interval whose error is ``error`` to bring it within ``share``,
    each bisection dividing it by ``gain`` (:meth:`NestedGrid.gain`).

    Where F is smooth, one bisection divides an interval's Simpson error by about
    :data:`SIMPSON_GAIN`, so an error further above its share than that would be bisected again
    next round; doing it now saves the round, and a round is a pass (on the bench's models a pass
    cost as much as 4 to 10 path points: on the weave model 9 passes fewer for 16 more points,
    bench/README.md, case 3).
    Where a bisection brought less than :data:`MIN_GAIN`, F has kinks there: one at a time."""
    if error <= gain * share or gain < MIN_GAIN:
        return 1
    if share <= 0:
        return MAX_BISECTIONS
    return min(MAX_BISECTIONS, math.ceil(math.log(error / share, gain)))


def _new_nodes(times: int) -> int:
    """Nodes an interval bisected ``times`` over adds: 2**times midpoints and 2**times − 2 edges."""
    return 2 ** (times + 1) - 2


def _bisected(tri: tuple[float, float, float], times: int) -> list[tuple[float, float, float]]:
    """``tri`` bisected ``times`` over (each node computed as a single bisection would: nodes are
    keyed by u, so a node reached twice must be the same float)."""
    if times == 0:
        return [tri]
    a, m, c = tri
    return _bisected((a, (a + m) / 2, m), times - 1) + _bisected((m, (m + c) / 2, c), times - 1)


def refine_until_converged(ev: PathEvaluator, grids: list[NestedGrid], tolerance: float, floor: float,
                           max_steps: int, feature_tolerance: float, keep_gradients: bool = False) -> None:
    """Evaluate every grid's unevaluated nodes, then refine round by round (one pass per round) until
    each is within ``tolerance`` in completeness and ``feature_tolerance`` per feature (keeping each
    node's gradients too if ``keep_gradients``: the interior gradients)."""
    for grid in grids:
        grid.feature_tolerance, grid.keep_gradients = feature_tolerance, keep_gradients
    evaluate_nodes(ev, grids, [g.unevaluated() for g in grids])
    deepest = bisections_per_round(ev)
    while True:
        todo = [refinement(g, tolerance, floor, max_steps, deepest) for g in grids]
        if not any(todo):
            return
        evaluate_nodes(ev, grids, todo)


def evaluate_nodes(ev: PathEvaluator, grids: list[NestedGrid], nodes: list[list[float]]) -> None:
    """Evaluate F and ∇F at new nodes (u) of every example, all examples packed into shared passes.

    Only plain floats come back to the grids' bookkeeping: F and dF/du = ∇F·(x − b)·dα/du per node,
    whose finiteness is checked here (a NaN or ±inf in any gradient element survives the dot). The
    dot's terms are kept too, per feature: each node's contribution, what the attributions and their
    per-feature error estimate are made of; the gradients themselves only where a grid keeps them."""
    K, dev = ev.n_baselines, ev.device
    points = [(e, u, grids[e].path.alpha(u)) for e, new in enumerate(nodes) for u in new]
    if not points:
        return
    ex = [e for e, _, _ in points for _ in range(K)]
    alphas = [a for _, _, a in points for _ in range(K)]
    ex_t = torch.tensor(ex, device=dev)
    k_t = torch.tensor(list(range(K)) * len(points), device=dev)
    scores, dots, grads, products = [], [], [[] for _ in ev.xs], [[] for _ in ev.xs]
    keep = any(grid.keep_gradients for grid in grids)
    for sl, s, g in ev.rows(ex_t, k_t, torch.tensor(alphas, dtype=torch.float64, device=dev), checked=False):
        dot = 0
        for i, gi in enumerate(g):
            product = gi.reshape(gi.shape[0], -1) * ev.differences(i, ex_t[sl], k_t[sl])
            dot = dot + product.sum(1, dtype=torch.float64)
            products[i].append(product)
            if keep:
                grads[i].append(gi)
        scores.append(s)
        dots.append(dot)
    score_values, dot_values = _joined(scores).tolist(), _joined(dots).tolist()
    for r, (score, dot) in enumerate(zip(score_values, dot_values)):
        if not (math.isfinite(score) and math.isfinite(dot)):
            raise_non_finite("score" if not math.isfinite(score) else "gradient", alphas[r], ex[r])
    joined = [_joined(g) for g in grads] if keep else []
    for j, (e, u, _) in enumerate(points):
        r, grid = j * K, grids[e]
        grid.mean_scores[u] = sum(score_values[r:r + K]) / K
        grid.mean_dots[u] = sum(dot_values[r:r + K]) / K * grid.path.speed(u)
        if grid.keep_gradients:
            grid.grads[u] = tuple(g[r:r + K] for g in joined)
    terms, first_row = [_joined(p) for p in products], 0
    for grid, new in zip(grids, nodes):   # each example's rows are consecutive
        if new:
            rows = slice(first_row, first_row + len(new) * K)
            grid.add_contributions(new, tuple(t[rows] if K == 1 else t[rows].reshape(len(new), K, -1).mean(1)
                                              for t in terms))
            first_row = rows.stop


def _joined(chunks: list[torch.Tensor]) -> torch.Tensor:
    return chunks[0] if len(chunks) == 1 else torch.cat(chunks)


def collect(ev: PathEvaluator, grids: list[NestedGrid], return_interior: bool, tolerance: float,
            floor: float) -> PathIntegral:
    """The attributions of every example's final grid (Simpson's weights times its nodes'
    contributions), its saturation curve at the nodes where gradients were evaluated (their number is
    the example's step count), and its per-feature error estimate."""
    dtype = ev.xs[0].dtype
    per_example: list[list[torch.Tensor]] = [[] for _ in ev.xs]   # per input, per example [*features]
    interior: list[list[torch.Tensor]] = [[] for _ in ev.xs]
    alphas, path_scores, feature_errors = [], [], []
    for grid in grids:
        nodes = [u for u in grid.nodes() if u in grid.contribution_rows]
        w = grid.weight_row()
        for i, (x, contributions) in enumerate(zip(ev.xs, grid.contributions)):
            weights = torch.from_numpy(w).to(dtype=contributions.dtype, device=contributions.device)
            per_example[i].append((weights @ contributions).reshape(x.shape[1:]).to(x.dtype))
            if return_interior:
                interior[i].append(torch.stack([grid.grads[u][i] for u in nodes]).mean(1))
        alphas.append(torch.tensor([grid.path.alpha(u) for u in nodes], dtype=torch.float64))
        path_scores.append(torch.tensor([grid.mean_scores[u] for u in nodes], dtype=dtype))
        feature_errors.append(grid.feature_error(grid.absolute_floor(tolerance, floor)))
    ends = torch.tensor([[g.mean_scores[1.0], g.mean_scores[0.0]] for g in grids], dtype=dtype)
    return PathIntegral(
        attributions=tuple(torch.stack(attributions) for attributions in per_example),   # each [B, *features]
        score_input=ends[:, 0],
        score_baseline=ends[:, 1],
        alphas=alphas,
        path_scores=path_scores,
        steps=max(len(a) for a in alphas) * ev.n_baselines,
        interior=interior if return_interior else [],  # grids differ per example: lists
        feature_errors=[error for error, _ in feature_errors],
        features_within=[within for _, within in feature_errors],
    )
