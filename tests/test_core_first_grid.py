"""The first grid of ``plan="auto"``, sized by a path point's input: known answers on each kind.

Large points (one fills a default pass) start with eased ends: no gradient at α = 0 or 1, F there
from one forward-only pass. Small points start with 9 points. Linear models are exact on any grid,
a sharp step still reaches the converged answer, and a NaN at an end is named.
"""
from __future__ import annotations

import pytest
import torch

import igkit
from igkit.attribution.first_grid import EASED, FINE, PLAIN, SMALL_POINT_ROWS
from igkit.attribution.path import DEFAULT_CHUNK_ELEMENTS
from igkit.errors import NonFiniteError

#: features of an input so large that a default pass holds fewer than 5 of its points
LARGE = DEFAULT_CHUNK_ELEMENTS // 4
#: features of an input so small that a default pass holds at least SMALL_POINT_ROWS of its points
SMALL = DEFAULT_CHUNK_ELEMENTS // SMALL_POINT_ROWS


def _relative_l2(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).norm() / expected.norm())


@pytest.mark.parametrize("features, kind, gradients", [(LARGE, EASED, 3), (SMALL, FINE, 9), (40_000, PLAIN, 5)])
def test_a_linear_model_is_exact_on_the_first_grid_of_its_size(features, kind, gradients):
    torch.manual_seed(0)
    w = torch.randn(features)
    x = torch.randn(1, features)
    result = igkit.integrated_gradients(lambda v: v @ w, x)
    assert result.meta["first_grid"] == kind
    torch.testing.assert_close(result.attributions, x * w, rtol=1e-5, atol=1e-6)
    costs = result.summary(0)
    assert costs["gradient_evaluations"] == gradients        # converged on the first grid
    assert costs["forward_evaluations"] == (2 if kind == EASED else 0)   # F at the eased ends


def test_eased_ends_never_use_a_gradient_at_the_baseline():
    """ReLU at the zero baseline: torch's gradient at α = 0 is 0, at every α > 0 it is 1. The eased
    grid never evaluates it, so the constant is integrated exactly on the first 3 points."""
    x = torch.rand(1, LARGE) + 0.5
    result = igkit.integrated_gradients(lambda v: torch.relu(v).sum(1), x)
    assert result.meta["first_grid"] == EASED and result.summary(0)["gradient_evaluations"] == 3
    torch.testing.assert_close(result.attributions, x, rtol=1e-6, atol=1e-7)
    assert float(result.alphas[0].min()) > 0 and float(result.alphas[0].max()) < 1


def _sharp_step(x: torch.Tensor) -> torch.Tensor:
    """F(α) = sigmoid(40 (α − 0.6)) on the path from 0 to a positive x: F moves near α = 0.6."""
    return torch.sigmoid(40 * (x.mean(1) / 0.75 - 0.6))


def test_eased_ends_reach_the_converged_answer_on_a_sharp_step():
    torch.manual_seed(1)
    x = 0.5 + 0.5 * torch.rand(1, LARGE)
    reference = igkit.integrated_gradients(_sharp_step, x, steps=256).attributions
    result = igkit.integrated_gradients(_sharp_step, x, tolerance=0.01)
    assert result.meta["first_grid"] == EASED and bool(result.meta["converged"][0])
    assert float(result.completeness_error[0]) <= 0.01
    assert _relative_l2(result.attributions, reference) <= 0.01
    assert result.summary(0)["gradient_evaluations"] > 3    # it refined where F moves


def test_the_ends_gradients_when_interior_gradients_are_asked_for_change_nothing():
    torch.manual_seed(2)
    x = 0.5 + 0.5 * torch.rand(1, LARGE)
    plain = igkit.integrated_gradients(_sharp_step, x)
    interior = igkit.integrated_gradients(_sharp_step, x, return_interior=True)
    torch.testing.assert_close(interior.attributions, plain.attributions, rtol=1e-5, atol=1e-9)
    assert len(interior.alphas[0]) == len(plain.alphas[0]) + 2   # the ends, at weight 0
    assert interior.summary(0)["forward_evaluations"] == 0


def test_off_keeps_the_five_point_grid_and_few_steps_keep_it_too():
    x = torch.rand(1, SMALL)
    off = igkit.integrated_gradients(lambda v: v.sum(1), x, plan="off")
    assert off.meta["first_grid"] == PLAIN and off.summary(0)["gradient_evaluations"] == 5
    capped = igkit.integrated_gradients(lambda v: v.sum(1), x, max_steps=7)
    assert capped.meta["first_grid"] == PLAIN   # 9 points would exceed max_steps


def test_a_nan_at_an_eased_end_is_named_with_its_alpha():
    x = torch.rand(1, LARGE) + 0.5
    with pytest.raises(NonFiniteError, match="alpha=0 on the path of example 0"):
        igkit.integrated_gradients(lambda v: torch.log(v.mean(1)), x)


def test_several_examples_and_baselines_share_the_end_pass():
    torch.manual_seed(3)
    w = torch.randn(LARGE // 2)
    x = torch.randn(2, LARGE // 2)
    baselines = torch.randn(2, 1, LARGE // 2) * 0.1   # two baselines for both examples
    result = igkit.integrated_gradients(lambda v: v @ w, x, baselines)
    assert result.meta["first_grid"] == EASED
    expected = ((x.unsqueeze(0) - baselines) * w).mean(0)
    torch.testing.assert_close(result.attributions, expected, rtol=1e-5, atol=1e-5)
    assert result.summary(1)["forward_evaluations"] == 3      # F(x) once, F(b) per baseline
