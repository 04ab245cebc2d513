"""Bad input gets an error that names the problem, never a traceback from deep inside torch."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import igkit
from igkit import IGInputError, NonFiniteError


def linear(v: torch.Tensor) -> torch.Tensor:
    return v.sum(1)


def test_baseline_shape_mismatch_names_both_shapes():
    with pytest.raises(IGInputError, match=r"\(2, 5\).*\(3, 4\)"):
        igkit.integrated_gradients(linear, torch.rand(3, 4), torch.rand(2, 5))


def test_wrong_number_of_baselines_for_several_inputs():
    with pytest.raises(IGInputError, match="3 baselines for 2 inputs"):
        igkit.integrated_gradients(lambda a, b: a.sum(1) + b.sum(1), (torch.rand(2, 3), torch.rand(2, 4)),
                                   (None, None, None))


def test_forward_that_does_not_return_one_score_per_example():
    with pytest.raises(IGInputError, match="one score per example"):
        igkit.integrated_gradients(lambda v: v.sum(), torch.rand(3, 4))
    with pytest.raises(IGInputError, match="one score per example"):
        igkit.integrated_gradients(lambda v: v.unsqueeze(1).expand(-1, 2, -1), torch.rand(3, 4))


def test_per_class_output_without_target_asks_for_one():
    with pytest.raises(IGInputError, match="pass target="):
        igkit.integrated_gradients(nn.Linear(4, 3), torch.rand(2, 4))


def test_target_out_of_range():
    with pytest.raises(IGInputError, match=r"target 7 is out of range .* 3 classes \(valid: 0\.\.2\)"):
        igkit.integrated_gradients(nn.Linear(4, 3), torch.rand(2, 4), target=7)
    with pytest.raises(IGInputError, match="2 targets for 3 examples"):
        igkit.integrated_gradients(nn.Linear(4, 3), torch.rand(3, 4), target=[0, 1])


@pytest.mark.parametrize("steps", [0, -3, 2.5])
def test_steps_below_one(steps):
    with pytest.raises(IGInputError, match="steps must be a whole number"):
        igkit.integrated_gradients(linear, torch.rand(2, 3), steps=steps)


@pytest.mark.parametrize("tolerance", [0, -0.1])
def test_tolerance_not_positive(tolerance):
    with pytest.raises(IGInputError, match="tolerance must be"):
        igkit.integrated_gradients(linear, torch.rand(2, 3), tolerance=tolerance)


def test_unknown_method_lists_the_rules():
    with pytest.raises(IGInputError, match="gausslegendre"):
        igkit.integrated_gradients(linear, torch.rand(2, 3), method="simpson")


def test_non_finite_score_says_at_which_alpha():
    def log_model(v):  # log(0) at the black baseline
        return torch.log(v).sum(1)

    with pytest.raises(NonFiniteError, match=r"non-finite score at alpha=0 on the path of example 0"):
        igkit.integrated_gradients(log_model, torch.rand(2, 3) + 0.5, method="riemann_left", steps=4)


def test_non_finite_gradient_says_at_which_alpha():
    def sqrt_model(v):  # finite value, infinite gradient at 0
        return torch.sqrt(v).sum(1)

    with pytest.raises(NonFiniteError, match=r"non-finite gradient at alpha=0 "):
        igkit.integrated_gradients(sqrt_model, torch.rand(1, 3) + 0.5, method="riemann_trapezoid", steps=3)


def test_integer_inputs_are_refused_with_a_hint():
    with pytest.raises(IGInputError, match="floating point"):
        igkit.integrated_gradients(linear, torch.ones(2, 3, dtype=torch.long))


def test_batch_size_must_be_positive():
    with pytest.raises(IGInputError, match="batch_size"):
        igkit.integrated_gradients(linear, torch.rand(2, 3), batch_size=0)


def test_forward_that_detaches_its_input():
    with pytest.raises(IGInputError, match="does not depend on the inputs"):
        igkit.integrated_gradients(lambda v: v.detach().sum(1), torch.rand(2, 3))
