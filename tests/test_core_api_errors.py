"""The Python API's errors are igkit's: what was wrong with the input, and what to do.

dtype and device clashes, empty batches, references and baseline stacks, NaN inputs,
bytes given as items, and step counts beyond the documented limit each get an
IGInputError that names the fix, before any pass (no torch traceback, no NaN
blamed on the model). Large Gauss–Legendre rules are exact and computed quickly.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import igkit
from igkit.errors import IGInputError
from igkit.options import MAX_PATH_POINTS
from igkit.attribution.quadrature import quadrature


@pytest.fixture
def model() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).eval()


def test_float64_input_to_a_float32_model_names_both_dtypes_and_the_fix(model):
    with pytest.raises(IGInputError, match=r"float64.*float32.*x\.to"):
        igkit.integrated_gradients(model, torch.rand(2, 3, dtype=torch.float64), target=0)


def test_a_dtype_clash_inside_a_forward_igkit_cannot_inspect_is_still_named(model):
    hidden = {"net": model}   # not reachable from the function: only the failure tells

    def forward(x: torch.Tensor) -> torch.Tensor:
        return hidden["net"](x)

    with pytest.raises(IGInputError, match=r"dtype torch\.float64.*dtype and device"):
        igkit.integrated_gradients(forward, torch.rand(2, 3, dtype=torch.float64), target=0)


def test_meta_tensors_are_refused_as_holding_no_values(model):
    with pytest.raises(IGInputError, match="'meta' device"):
        igkit.integrated_gradients(model, torch.empty(2, 3, device="meta"), target=0)


def test_a_batch_of_zero_examples_is_refused(model):
    with pytest.raises(IGInputError, match="no examples"):
        igkit.integrated_gradients(model, torch.rand(0, 3), target=0)
    with pytest.raises(IGInputError, match="no examples"):
        igkit.expected_gradients(model, torch.rand(0, 3), torch.rand(4, 3), target=0)


def test_nan_in_the_input_is_named_as_the_inputs_fault(model):
    x = torch.tensor([[0.1, 0.2, 0.3], [float("nan"), 0.0, float("inf")]])
    with pytest.raises(IGInputError, match=r"input 0 holds 2 NaN or infinite.*\[1\]") as caught:
        igkit.integrated_gradients(model, x, target=0)
    assert "model" not in str(caught.value) and "alpha" not in str(caught.value)


def test_empty_and_non_finite_baselines_and_references_are_refused(model):
    x = torch.rand(2, 3)
    with pytest.raises(IGInputError, match=r"stack of baselines is empty"):
        igkit.integrated_gradients(model, x, torch.rand(0, 2, 3), target=0)
    with pytest.raises(IGInputError, match="baseline of input 0 holds"):
        igkit.integrated_gradients(model, x, torch.full((3,), float("nan")), target=0)
    with pytest.raises(IGInputError, match=r"reference holds no examples"):
        igkit.expected_gradients(model, x, torch.rand(0, 3), target=0)
    with pytest.raises(IGInputError, match=r"reference holds no examples"):
        igkit.multi_baseline_ig(model, x, torch.rand(0, 3), target=0)


def test_bytes_given_as_items_are_refused_before_anything_loads():
    with pytest.raises(IGInputError, match="decode them first"):
        igkit.explain("text", b"the cat sat on the")
    with pytest.raises(IGInputError, match="one item .* or a list"):
        igkit.explain("molecules", 42)


def test_step_counts_beyond_the_documented_limit_are_refused_with_the_way_out(model):
    x = torch.rand(1, 3)
    with pytest.raises(IGInputError, match=f"limit of {MAX_PATH_POINTS}.*tolerance"):
        igkit.integrated_gradients(model, x, target=0, steps=MAX_PATH_POINTS + 1)
    with pytest.raises(IGInputError, match=f"max_steps .* to {MAX_PATH_POINTS}"):
        igkit.integrated_gradients(model, x, target=0, max_steps=10 ** 8)
    for option in ("steps", "max_steps"):
        with pytest.raises(IGInputError, match=option):
            igkit.Integration(**{option: 10 ** 8}).validated()


@pytest.mark.parametrize("n", [100, 101, 257, 2000])
def test_large_gauss_legendre_rules_are_exact_for_their_degree(n):
    """Both node computations (eigenvalues up to 100 points, Newton beyond) give the rule that
    integrates polynomials of degree 2n − 1 exactly: ∫₀¹ α^k dα = 1/(k + 1)."""
    nodes, weights = quadrature("gausslegendre", n)
    assert np.all(np.diff(nodes) > 0) and 0 < nodes[0] and nodes[-1] < 1
    assert np.all(weights > 0)
    for k in (0, 1, 7, 40, 2 * n - 1):
        assert abs(weights @ nodes ** k - 1 / (k + 1)) < 1e-12, k
    if n <= 300:
        reference, reference_weights = np.polynomial.legendre.leggauss(n)
        np.testing.assert_allclose(nodes, 0.5 * (reference + 1), atol=1e-14)
        np.testing.assert_allclose(weights, 0.5 * reference_weights, rtol=1e-8)  # numpy: eigenvectors


def test_fixed_rules_at_the_limit_run_in_bounded_passes():
    """The largest allowed rule runs on a tiny model with small passes and stays exact: row indices
    are built one pass at a time, not for all steps × examples at once."""
    w = torch.tensor([0.5, -2.0, 3.0])
    x = torch.rand(2, 3)
    result = igkit.integrated_gradients(lambda v: v @ w, x, steps=MAX_PATH_POINTS, method="riemann_middle",
                                        batch_size=4096)
    torch.testing.assert_close(result.attributions, x * w, rtol=2e-4, atol=1e-6)  # float32 sum of 10^4 terms
    assert result.summary(1)["passes"] == -(-2 * MAX_PATH_POINTS // 4096) + 1   # + the end points
