"""Planned adaptive integration: F on a grid of α with forward passes, then gradients where F moves.

Known answers (linear models, a sharp step, gradients that cancel), agreement with a
converged reference and with Captum, the costs recorded per example, and a clear word
for the bad cases (F constant, NaN on the path, dropout left on).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients
from torch import nn

import igkit
from igkit.errors import IGInputError, IgkitWarning, NonFiniteError
from igkit.attribution.nested_grid import NestedGrid, refinement
from igkit.attribution.planned import CANCELLATION_LIMIT, PLAN_FORWARD_POINTS, PLAN_INTERVALS, UNIFORM_SHARE
from igkit.attribution.warp import PlannedPath
from igkit.options import FEATURE_TOLERANCE_FACTOR

from models import SaturatingReLUNet, TinyCNN

PLAN_POINTS = PLAN_FORWARD_POINTS


def _relative_l2(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).norm() / expected.norm())


@pytest.mark.parametrize("plan", ["forward", "off"])
def test_linear_model_is_exact_wherever_the_points_go(plan):
    w = torch.tensor([0.5, -2.0, 3.0, 0.25])
    x = torch.tensor([[1.0, 2.0, -1.0, 4.0], [0.3, 0.1, 0.2, -0.5]])
    stack = torch.stack([torch.zeros(4), torch.tensor([0.2, -1.0, 0.5, 1.0])])  # two baselines
    result = igkit.integrated_gradients(lambda v: v @ w, x, stack.unsqueeze(1), plan=plan)
    expected = ((x.unsqueeze(0) - stack.unsqueeze(1)) * w).mean(0)
    torch.testing.assert_close(result.attributions, expected, rtol=1e-6, atol=1e-6)
    assert result.meta["plan"] == plan


def _sharp_step(x: torch.Tensor) -> torch.Tensor:
    """F(α) = sigmoid(80 (α − 0.6)) on the path from 0 to x = 1: F moves only near α = 0.6."""
    return torch.sigmoid(80 * (x.sum(1) / x.shape[1] - 0.6))


def test_a_sharp_step_in_f_gets_its_points_and_the_converged_answer():
    x = torch.ones(1, 4) * torch.tensor([0.7, 1.3, 1.0, 1.0])
    reference = igkit.integrated_gradients(_sharp_step, x, steps=512).attributions
    planned = igkit.integrated_gradients(_sharp_step, x, tolerance=0.01, plan="forward")
    old = igkit.integrated_gradients(_sharp_step, x, tolerance=0.01, plan="off")
    assert float(planned.completeness_error[0]) <= 0.01
    assert _relative_l2(planned.attributions, reference) <= 0.01
    nodes = planned.alphas[0]
    near = int(((nodes > 0.5) & (nodes < 0.7)).sum())
    assert near > len(nodes) / 2, nodes          # most gradient points sit where F moves
    costs, old_costs = planned.summary(0), old.summary(0)
    assert costs["forward_evaluations"] == PLAN_POINTS
    # the plan spends fewer gradient points (13 against 23; the unplanned grid bisects a steep interval
    # several times over in one round, so it takes no more passes)
    assert costs["gradient_evaluations"] < old_costs["gradient_evaluations"]


def test_gradients_that_cancel_along_a_flat_path_are_still_integrated():
    """F = tanh(x₀) − tanh(x₁) with x₀ = x₁: F is 0 all along the path, the attributions are ±tanh(a)."""
    a = 1.5
    x = torch.tensor([[a, a]])
    with pytest.warns(IgkitWarning, match="cancel"):
        result = igkit.integrated_gradients(lambda v: torch.tanh(v[:, 0]) - torch.tanh(v[:, 1]), x,
                                            plan="forward")
    expected = torch.tensor([[1.0, -1.0]]) * torch.tanh(torch.tensor(a))
    torch.testing.assert_close(result.attributions, expected, rtol=1e-3, atol=1e-4)


def test_constant_f_is_said_to_have_nothing_to_attribute():
    x = torch.rand(2, 5)
    with pytest.warns(IgkitWarning, match="nothing to attribute"):
        result = igkit.integrated_gradients(lambda v: 0 * v.sum(1) + 3.0, x, plan="forward")
    assert torch.all(result.attributions == 0)


def test_nan_on_the_path_names_the_alpha_and_the_example():
    x = torch.tensor([[0.2, 0.2], [1.0, 1.0]])

    def broken(v: torch.Tensor) -> torch.Tensor:   # NaN where the input sum falls below 1: α < 0.5
        return torch.sqrt(v.sum(1) - 1.0) + v[:, 0]

    with pytest.raises(NonFiniteError, match=r"alpha=.*example"):
        igkit.integrated_gradients(broken, x, plan="forward")


def test_dropout_left_on_is_named_and_then_refused():
    model = nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.5), nn.Linear(16, 1)).train()
    with pytest.warns(IgkitWarning, match="training mode"):
        with pytest.raises(IGInputError, match="not deterministic.*model.eval"):
            igkit.integrated_gradients(model, torch.rand(2, 6), plan="forward")
    model.eval()
    result = igkit.integrated_gradients(model, torch.rand(2, 6), plan="forward")
    assert torch.all(result.completeness_error <= 0.01)


def test_planned_agrees_with_captum_and_reaches_the_tolerance():
    model = TinyCNN().eval()
    x = torch.rand(3, 3, 8, 8)
    ours = igkit.integrated_gradients(model, x, target=[0, 2, 1], tolerance=1e-3, plan="forward")
    theirs = IntegratedGradients(model).attribute(x, target=[0, 2, 1], n_steps=256, method="gausslegendre")
    assert torch.all(ours.completeness_error <= 1e-3)
    assert _relative_l2(ours.attributions, theirs) < 0.01


def test_costs_are_recorded_per_example_and_survive_slicing():
    model = SaturatingReLUNet().eval()
    x = torch.rand(3, 8) * 3
    result = igkit.integrated_gradients(model, x, plan="forward")
    for e in range(3):
        summary = result.summary(e)
        assert summary["forward_evaluations"] == PLAN_POINTS
        assert summary["gradient_evaluations"] == summary["steps"] == len(result.alphas[e])
        assert summary["passes"] >= 2                      # the plan, then at least one gradient pass
        assert result.example(e).summary(0) == {**summary}
    assert sum(result.meta["costs"]["gradient_evaluations"]) == result.meta["gradient_evaluations"]


def test_pass_size_changes_the_planned_answer_only_within_the_accuracy_asked_for():
    """Passes of another size round differently in the last bits, and a refinement decision near its
    threshold can then go the other way (on this ReLU net at 1e-3, 135 points instead of 137: an
    interval's completeness error is a small difference of large sums). Both answers are within
    the tolerances asked for, so they agree to within them."""
    torch.manual_seed(0)
    model = SaturatingReLUNet().eval()
    x = torch.rand(4, 8) * 3
    whole = igkit.integrated_gradients(model, x, tolerance=1e-3, plan="forward")
    chunked = igkit.integrated_gradients(model, x, tolerance=1e-3, batch_size=3, plan="forward")
    for result in (whole, chunked):
        assert all(result.meta["converged"])
        assert max(result.meta["feature_error"]) <= FEATURE_TOLERANCE_FACTOR * 1e-3
    apart = (chunked.attributions - whole.attributions).norm(dim=1) / whole.attributions.norm(dim=1)
    assert apart.max() <= 2 * FEATURE_TOLERANCE_FACTOR * 1e-3, apart


class _TinyRecurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 8, batch_first=True)
        self.head = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.lstm(x)[0][:, -1]))[:, 0]


def test_auto_plans_for_recurrent_models_and_sizes_the_first_grid_for_others():
    """A recurrent pass costs far more than its points (planning paid on the PTB LSTM); on the
    feed-forward bench models it did not, so auto runs no forward plan there, and starts from 9
    points where inputs are small (a pass's fixed cost dominates)."""
    recurrent = _TinyRecurrent().eval()
    x = torch.rand(2, 6, 3) * 4
    auto = igkit.integrated_gradients(recurrent, x)
    assert auto.meta["plan"] == "forward" and auto.summary(0)["forward_evaluations"] == PLAN_POINTS
    assert torch.all(auto.completeness_error <= 0.01)
    # auto's plan starts from 4 intervals in u for an input this small (7 interior points), the
    # plan asked for from 2 (3 points: the fewest gradients)
    assert all(auto.summary(e)["gradient_evaluations"] >= 7 for e in range(2))
    asked = igkit.integrated_gradients(recurrent, x, plan="forward")
    assert torch.all(asked.completeness_error <= 0.01)
    assert sum(asked.summary(e)["gradient_evaluations"] for e in range(2)) <= \
        sum(auto.summary(e)["gradient_evaluations"] for e in range(2))
    model = SaturatingReLUNet().eval()
    x = torch.rand(3, 8) * 3
    auto = igkit.integrated_gradients(model, x)
    off = igkit.integrated_gradients(model, x, plan="off")
    assert auto.meta["plan"] == off.meta["plan"] == "off" and auto.summary(0)["forward_evaluations"] == 0
    assert (auto.meta["first_grid"], off.meta["first_grid"]) == ("9 points", "5 points")
    assert all(len(a) >= 9 for a in auto.alphas) and torch.all(auto.completeness_error <= 0.01)


def test_an_unknown_plan_is_refused_with_the_choices():
    with pytest.raises(IGInputError, match="auto, forward, off"):
        igkit.integrated_gradients(lambda v: v.sum(1), torch.rand(1, 3), plan="later")
    with pytest.raises(IGInputError, match="plan"):
        igkit.Integration(plan="later").validated()


def test_a_plan_with_constant_slope_maps_u_to_the_eased_uniform_path():
    """F linear in α: the density is uniform, so α(u) is the ease 3u² − 2u³ and dα/du = 6u(1 − u)."""
    path = PlannedPath.from_plan(np.linspace(0.2, 0.9, PLAN_INTERVALS + 1), UNIFORM_SHARE)
    for u in np.linspace(0, 1, 41):
        assert path.alpha(u) == pytest.approx(3 * u * u - 2 * u ** 3, abs=1e-12)
        assert path.speed(u) == pytest.approx(6 * u * (1 - u), abs=1e-12)


def test_the_planned_map_spends_u_where_f_moves_and_keeps_a_uniform_share():
    alphas = np.linspace(0, 1, PLAN_INTERVALS + 1)
    path = PlannedPath.from_plan(1 / (1 + np.exp(-60 * (alphas - 0.5))), UNIFORM_SHARE)
    u = np.linspace(0, 1, 2001)
    a = np.array([path.alpha(v) for v in u])
    assert a[0] == 0.0 and a[-1] == 1.0 and np.all(np.diff(a) >= 0)
    np.testing.assert_allclose(np.gradient(a, u)[1:-1], [path.speed(v) for v in u[1:-1]], rtol=0.02, atol=1e-3)
    moving = float(((a > 0.35) & (a < 0.65)).mean())
    assert moving > 0.5                                  # 30% of the path, most of the points
    assert float((a < 0.3).mean()) > 0.05               # the flat part still gets some


def test_the_ends_gradients_are_never_used_on_a_planned_path():
    """ReLU at the zero baseline: torch's gradient at α = 0 is 0, at every α > 0 it is 1. The planned
    path weighs α = 0 by dα/du = 0, so it integrates the constant exactly on its first 3 points."""
    x = torch.tensor([[0.5, 2.0, 1.5]])
    planned = igkit.integrated_gradients(lambda v: torch.relu(v).sum(1), x, plan="forward")
    torch.testing.assert_close(planned.attributions, x, rtol=1e-6, atol=1e-7)
    assert planned.summary(0)["gradient_evaluations"] == 3 and planned.summary(0)["passes"] == 2
    assert float(planned.alphas[0].min()) > 0 and float(planned.alphas[0].max()) < 1
    off = igkit.integrated_gradients(lambda v: torch.relu(v).sum(1), x, plan="off")
    assert off.summary(0)["gradient_evaluations"] > 5   # the wrong gradient at α = 0 costs rounds


def test_interior_gradients_of_a_planned_path_cover_its_ends():
    model = SaturatingReLUNet().eval()
    result = igkit.integrated_gradients(model, torch.rand(2, 8) * 3, plan="forward", return_interior=True)
    for e in range(2):
        assert float(result.alphas[e][0]) == 0.0 and float(result.alphas[e][-1]) == 1.0
        assert result.interior[0][e].shape == (len(result.alphas[e]), 8)   # input 0, example e
    assert torch.all(result.completeness_error <= 0.01)


def test_interval_errors_that_cancel_do_not_settle_a_grid_with_a_cancellation_limit():
    """F rises 0.5 on each half, but the Simpson estimates from dF/du at the nodes are 0 and 1: the
    two errors are −0.5 + 0.5 = 0 in sum, so the gap alone says converged; the limit says not."""
    def grid(limit):
        g = NestedGrid(cancellation_limit=limit)
        g.mean_scores = {0.0: 0.0, 0.25: 0.25, 0.5: 0.5, 0.75: 0.75, 1.0: 1.0}
        g.mean_dots = {0.0: 0.0, 0.25: 0.0, 0.5: 0.0, 0.75: 3.0, 1.0: 0.0}
        return g
    assert grid(None).absolute_error() == pytest.approx(0.0)
    assert grid(None).settled(0.01)
    assert not grid(CANCELLATION_LIMIT).settled(0.01)
    assert refinement(grid(CANCELLATION_LIMIT), 0.01, 0.0, 1024)  # both halves are bisected
