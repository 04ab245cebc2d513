"""The per-feature error check: completeness bounds the attributions' sum, not each one, so adaptive
integration also refines until an estimate of the per-feature error is within its own tolerance,
and reports that estimate with every answer."""
from __future__ import annotations

import math

import pytest
import torch

import igkit
from igkit.attribution import nested_grid
from igkit.errors import IGInputError, IgkitWarning
from igkit.options import FEATURE_TOLERANCE_FACTOR

STEEPNESS = 20.0


def opposed_steps(v: torch.Tensor) -> torch.Tensor:
    """tanh(k(v₀ − ½)) − tanh(k(v₁ − ½)): at v₀ = v₁ F is 0 all along the path, so every grid is
    complete, while the attributions are ±2 tanh(k/2) and each needs a fine grid around α = ½."""
    return torch.tanh(STEEPNESS * (v[:, 0] - 0.5)) - torch.tanh(STEEPNESS * (v[:, 1] - 0.5))


EXACT = 2 * math.tanh(STEEPNESS / 2) * torch.tensor([[1.0, -1.0]], dtype=torch.float64)


def relative_error(attributions: torch.Tensor) -> float:
    return float((attributions.double() - EXACT).norm() / EXACT.norm())


@pytest.mark.parametrize("plan", ["auto", "off"])
def test_attributions_that_cancel_in_the_sum_are_refined_until_each_is_accurate(plan):
    x = torch.ones(1, 2)
    checked = igkit.integrated_gradients(opposed_steps, x, plan=plan)
    unchecked = igkit.integrated_gradients(opposed_steps, x, plan=plan, feature_tolerance=math.inf)
    assert relative_error(unchecked.attributions) > 0.05          # complete, yet 5% off per feature
    assert relative_error(checked.attributions) <= FEATURE_TOLERANCE_FACTOR * 0.01
    assert checked.meta["feature_tolerance"] == FEATURE_TOLERANCE_FACTOR * 0.01
    # on a smooth F the estimate (Simpson against the trapezoid rule) overstates the error
    summary = checked.summary(0)
    assert relative_error(checked.attributions) <= summary["feature_error"] <= checked.meta["feature_tolerance"]
    assert unchecked.summary(0)["feature_error"] > 0.05


def test_a_gradient_jump_inside_an_interval_is_refined_until_each_attribution_is_accurate():
    """relu(v₀ − 0.37) − relu(v₁ − 0.37) at v₀ = v₁ = 1: F is 0 all along the path, the attributions
    are ±0.63, and on 9 points the jump sits inside [0.25, 0.5], where Simpson's rule is 0.078 off
    while its difference to the trapezoid rule is 0.021 (3.3% of 0.63, within 5%): what the
    bisection changed there (0.125) is what shows it."""
    def opposed_kinks(v: torch.Tensor) -> torch.Tensor:
        return torch.relu(v[:, 0] - 0.37) - torch.relu(v[:, 1] - 0.37)

    x = torch.ones(1, 2)
    exact = torch.tensor([[0.63, -0.63]])
    checked = igkit.integrated_gradients(opposed_kinks, x)
    unchecked = igkit.integrated_gradients(opposed_kinks, x, feature_tolerance=math.inf)
    error = lambda r: float((r.attributions - exact).norm() / exact.norm())   # noqa: E731
    assert error(unchecked) > 0.1
    assert error(checked) <= FEATURE_TOLERANCE_FACTOR * 0.01


def test_a_linear_model_has_no_per_feature_error_on_any_path():
    """Constant gradients: Simpson and the trapezoid agree, in u and in α (planned paths too)."""
    w = torch.tensor([0.5, -2.0, 1.0, 3.0])
    x = torch.tensor([[1.0, 2.0, -1.0, 0.5]])
    for plan in ("auto", "off", "forward"):
        result = igkit.integrated_gradients(lambda v: v @ w, x, plan=plan)
        torch.testing.assert_close(result.attributions, x * w)
        assert result.meta["feature_error"][0] < 1e-6, plan


def test_a_per_feature_error_still_above_its_tolerance_at_max_steps_is_said():
    with pytest.warns(IgkitWarning, match="per-feature error"):
        result = igkit.integrated_gradients(opposed_steps, torch.ones(1, 2), max_steps=9)
    assert result.meta["converged"] == [True]                     # complete all the same
    assert result.meta["feature_error"][0] > result.meta["feature_tolerance"]


def test_a_feature_tolerance_that_is_not_a_positive_number_is_refused():
    with pytest.raises(IGInputError, match="feature_tolerance"):
        igkit.integrated_gradients(opposed_steps, torch.ones(1, 2), feature_tolerance=0)


def test_a_fixed_rule_reports_no_estimate():
    result = igkit.integrated_gradients(opposed_steps, torch.ones(1, 2), steps=20)
    assert result.summary(0)["feature_error"] is None


def test_the_estimate_is_the_same_computed_in_slices_of_the_features(monkeypatch):
    """Two inputs, three baselines, two examples: slicing the features (as long inputs are, to bound
    memory) changes nothing but float32 rounding in the products."""
    torch.manual_seed(0)
    w1, w2 = torch.randn(6), torch.randn(4)

    def model(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.tanh(3 * (a @ w1)) * torch.sigmoid(b @ w2)

    inputs = (torch.randn(2, 6), torch.randn(2, 4))
    baselines = (torch.randn(3, 2, 6) * 0.1, torch.randn(3, 2, 4) * 0.1)
    whole = igkit.integrated_gradients(model, inputs, baselines)
    monkeypatch.setattr(nested_grid, "FEATURE_CHUNK_ELEMENTS", 7)
    sliced = igkit.integrated_gradients(model, inputs, baselines)
    assert whole.meta["feature_error"] == pytest.approx(sliced.meta["feature_error"], rel=1e-6)
    assert [len(a) for a in whole.alphas] == [len(a) for a in sliced.alphas]


def test_examples_attributed_together_get_the_estimate_each_gets_alone():
    """Examples share passes, and each node's contribution is filed with its own example: batched,
    each example's grid, estimate and attributions are what it gets alone (three baselines each)."""
    torch.manual_seed(1)
    w = torch.randn(5)

    def model(v: torch.Tensor) -> torch.Tensor:
        return torch.tanh(4 * (v @ w)) + 0.1 * v[:, 0] ** 2

    inputs = torch.randn(3, 5)
    baselines = torch.randn(3, 3, 5) * 0.2
    together = igkit.integrated_gradients(model, inputs, baselines)
    for e in range(3):
        alone = igkit.integrated_gradients(model, inputs[e:e + 1], baselines[:, e:e + 1])
        assert len(alone.alphas[0]) == len(together.alphas[e])
        assert alone.meta["feature_error"][0] == pytest.approx(together.meta["feature_error"][e], rel=1e-4)
        assert torch.allclose(alone.attributions[0], together.attributions[e], rtol=1e-4, atol=1e-6)
