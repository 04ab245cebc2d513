"""How an example's adaptive grid starts under ``plan="auto"``, from the size of one path point.

A pass costs a fixed part (dispatch, the autograd graph, igkit's bookkeeping) plus a part per
point, and which one dominates follows the size of a point's input:

* **small points** (a default pass holds at least :data:`SMALL_POINT_ROWS` of them): the fixed
  part dominates (the bench's ReLU CNN: 1.14 ms for one point alone, 0.48 ms each in a pass of 5,
  0.20 ms in a pass of 65), so a finer first grid (4 Simpson intervals, 9 points) saves whole
  refinement rounds: on the CNN (1,728 elements) it took 21 passes where 5 points took 28, with
  164 gradient evaluations to 190, and 0.79× the seconds; on the weave molecules (about 600
  elements) 0.81× (bench/README.md, case 3). The small GPT-2's 20-token contexts (2,560
  elements) took 0.98× the seconds from 5 points (the bench at commit 29aa9df): not small;
* **large points** (a default pass holds fewer than the 5-point grid, e.g. a 2,048-token
  context): the points dominate and passes come nearly free, so the first grid spends no
  gradient on the path's ends: the ends are eased in (α = 3u² − 2u³, whose dα/du vanishes there)
  and F at them comes from one forward-only pass, so the first round costs 3 gradient points (and
  refinement bisects once per round: :func:`igkit.attribution.nested_grid.bisections_per_round`);
* in between (GoogLeNet at 112 px, where F was flat and 5 points sufficed, and that GPT-2):
  2 intervals, 5 points.

The choice depends on the inputs' shapes only, never on timings, so an item's answer is the same
on every machine and whatever else shares its passes.
"""
from __future__ import annotations

import numpy as np

from igkit.attribution.nested_grid import INITIAL_INTERVALS, NestedGrid
from igkit.attribution.path import PathEvaluator, default_batch_size
from igkit.attribution.planned import CANCELLATION_LIMIT
from igkit.attribution.warp import PlannedPath

#: points a default pass must hold for a point to count as small (an input of ≤ 2,048 elements)
SMALL_POINT_ROWS = 1024
#: Simpson intervals of the first grid for small points
SMALL_POINT_INTERVALS = 4

PLAIN, FINE, EASED = "5 points", "9 points", "eased ends"


def first_grid_kind(ev: PathEvaluator, max_steps: int) -> str:
    """Which first grid suits these inputs (see the module's docstring)."""
    rows_per_point = default_batch_size(ev.xs) // ev.n_baselines
    if rows_per_point < 2 * INITIAL_INTERVALS + 1:
        return EASED
    if rows_per_point >= SMALL_POINT_ROWS and max_steps >= 2 * SMALL_POINT_INTERVALS + 1:
        return FINE
    return PLAIN


def first_intervals(ev: PathEvaluator, max_steps: int) -> int:
    """Simpson intervals of the first grid: a path auto plans starts from as many as the plain grid
    would (fewer refinement rounds: the bench's planned LSTM took 33 passes with 4 intervals in u
    where it took 41 with 2, for the same 178 gradient points; bench/results/README.md)."""
    return SMALL_POINT_INTERVALS if first_grid_kind(ev, max_steps) == FINE else INITIAL_INTERVALS


def first_grids(ev: PathEvaluator, kind: str, evaluate_ends: bool) -> list[NestedGrid]:
    """Every example's first grid of ``kind``. Eased grids get F at their ends from one forward-only
    pass over all examples, unless ``evaluate_ends`` (their gradients are then wanted too, at zero
    weight: the answer is the same)."""
    if kind == FINE:
        return [NestedGrid(SMALL_POINT_INTERVALS) for _ in range(ev.batch)]
    if kind == PLAIN:
        return [NestedGrid() for _ in range(ev.batch)]
    grids = [NestedGrid(path=PlannedPath(np.ones(2)), cancellation_limit=CANCELLATION_LIMIT)
             for _ in range(ev.batch)]
    if evaluate_ends:
        return grids
    top, bottom = ev.end_scores()
    for grid, bottom, top in zip(grids, bottom.double().tolist(), top.double().tolist()):
        for u, score in ((0.0, bottom), (1.0, top)):
            grid.mean_scores[u] = score
            grid.mean_dots[u] = 0.0   # dα/du = 0 there: the gradient's weight is 0
    return grids
