"""Refinement rounds: an interval far above its share of the error is bisected several times in one
round where F is smooth (a round is a pass), once at a time where a bisection gained little (a kink)."""
from __future__ import annotations

import math

import torch

import igkit
from igkit.attribution import nested_grid
from igkit.attribution.first_grid import EASED
from igkit.attribution.nested_grid import (MAX_BISECTIONS, SIMPSON_GAIN, NestedGrid, bisections_needed,
                                           bisections_per_round, refinement)
from igkit.attribution.path import DEFAULT_CHUNK_ELEMENTS, PathEvaluator

#: features of an input so large that a default pass holds fewer than 5 of its points
LARGE = DEFAULT_CHUNK_ELEMENTS // 4


def test_bisections_follow_how_far_the_error_is_above_its_share():
    assert bisections_needed(0.5, 1.0) == 1                       # within its share: the fallback bisection
    assert bisections_needed(SIMPSON_GAIN * 1.0, 1.0) == 1        # one bisection is expected to suffice
    assert bisections_needed(SIMPSON_GAIN ** 1.5, 1.0) == 2
    assert bisections_needed(1e12, 1.0) == MAX_BISECTIONS
    assert bisections_needed(1e12, 1.0, gain=2.0) == 1            # a kink: one at a time
    assert bisections_needed(1e12, 0.0) == MAX_BISECTIONS         # nothing is allowed: as deep as it goes


def _grid_of(f, df, n_intervals: int = 2) -> NestedGrid:
    """A grid on the identity path whose nodes know F = f(u) and dF/du = df(u) (one baseline)."""
    grid = NestedGrid(n_intervals)
    for u in grid.nodes():
        grid.mean_scores[u], grid.mean_dots[u] = f(u), df(u)
    return grid


def _fill(grid: NestedGrid, f, df) -> None:
    for u in grid.unevaluated():
        grid.mean_scores[u], grid.mean_dots[u] = f(u), df(u)


def test_a_steep_smooth_interval_is_bisected_several_times_and_a_kink_once_its_gain_is_seen():
    def steep(u):
        return float(torch.sigmoid(torch.tensor(30 * (u - 0.4), dtype=torch.float64)))

    def dsteep(u):
        s = steep(u)
        return 30 * s * (1 - s)

    grid = _grid_of(steep, dsteep)
    errors = grid.interval_errors()
    share = grid.allowed(1e-3, 0.0) / len(errors)
    assert max(errors) > SIMPSON_GAIN * share
    new = refinement(grid, 1e-3, 0.0, 1024)
    assert len(new) > 2 * sum(e > share for e in errors)          # more than one bisection each

    def kink(u):
        return abs(u - 0.3)

    def dkink(u):
        return 1.0 if u > 0.3 else -1.0

    grid = _grid_of(kink, dkink)
    refinement(grid, 1e-6, 0.0, 1024)                              # first round: assumed smooth
    _fill(grid, kink, dkink)
    around = [j for j, (a, _, c) in enumerate(grid.intervals) if a < 0.3 < c]
    (j,) = around
    assert grid.gain(j, grid.interval_errors()[j]) < 4             # its bisection gained little
    before = len(grid.nodes())
    refinement(grid, 1e-6, 0.0, 1024)
    assert len(grid.nodes()) - before == 2                         # the kink's interval: bisected once


def test_deep_bisection_converges_in_fewer_passes_to_the_same_answer():
    """F(α) = sigmoid(30(α − 0.4)) along the path: smooth but steep; adaptive agrees with 512 points."""
    w = torch.tensor([1.0, 2.0, -0.5])

    def model(v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(30 * (v @ w / 2.5 - 0.4))

    x = torch.ones(1, 3)
    reference = igkit.integrated_gradients(model, x, steps=512).attributions
    # completeness refinement alone: the per-feature estimate (Simpson against the trapezoid rule)
    # overstates a smooth F's error, and asks one more round here
    result = igkit.integrated_gradients(model, x, tolerance=1e-3, plan="off", feature_tolerance=math.inf)
    assert float(result.completeness_error[0]) <= 1e-3
    assert float((result.attributions - reference).norm() / reference.norm()) <= 2e-3
    assert result.summary(0)["passes"] <= 3, result.summary(0)


def test_where_one_point_fills_a_pass_intervals_are_bisected_once_per_round():
    """A 2,048-token context: a round costs its points only, so refinement never bisects deeper than
    once (deep bisection took 9 points and 202 s there, where 5 take 105–112 s)."""
    def evaluator(features: int) -> PathEvaluator:
        x = torch.rand(1, features) + 0.5
        return PathEvaluator(lambda v: v.sum(1), (x,), (torch.zeros(1, 1, features),), None)

    assert bisections_per_round(evaluator(LARGE)) == 1
    assert bisections_per_round(evaluator(64)) == MAX_BISECTIONS

    def steep(u):
        return float(torch.sigmoid(torch.tensor(30 * (u - 0.4), dtype=torch.float64)))

    def dsteep(u):
        s = steep(u)
        return 30 * s * (1 - s)

    grid = NestedGrid()
    for u in grid.nodes():
        grid.mean_scores[u], grid.mean_dots[u] = steep(u), dsteep(u)
    errors = grid.interval_errors()
    share = grid.allowed(1e-3, 0.0) / len(errors)
    assert max(errors) > SIMPSON_GAIN * share                     # deep enough to go deeper, were it allowed
    assert len(refinement(grid, 1e-3, 0.0, 1024, max_bisections=1)) == 2 * sum(e > share for e in errors)


def test_a_large_input_on_a_steep_path_bisects_each_interval_at_most_once_a_round(monkeypatch):
    """Through the public call: eased ends on a 2,048-token-sized input; no round adds more than two
    points per interval (one bisection), and the answer still converges."""
    rounds = []

    def watched(grid, *args, **kwargs):
        before = len(grid.intervals)
        new = refinement(grid, *args, **kwargs)
        rounds.append((before, len(new)))
        return new

    monkeypatch.setattr(nested_grid, "refinement", watched)
    torch.manual_seed(0)
    x = 0.5 + 0.5 * torch.rand(1, LARGE)
    result = igkit.integrated_gradients(lambda v: torch.sigmoid(30 * (v.mean(1) / 0.75 - 0.6)), x, tolerance=1e-3)
    assert result.meta["first_grid"] == EASED and bool(result.meta["converged"][0])
    assert any(new for _, new in rounds)                           # it did refine
    assert all(new <= 2 * before for before, new in rounds), rounds
