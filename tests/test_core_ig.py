"""Integrated gradients: exact answers, completeness, and agreement with Captum."""
from __future__ import annotations

import pytest
import torch
from captum.attr import IntegratedGradients
from torch import nn

import igkit
from igkit.attribution.quadrature import RULES

from models import SaturatingReLUNet, TinyCNN, TwoInputNet


def test_linear_model_gives_exactly_input_minus_baseline_times_weight():
    w = torch.tensor([0.5, -2.0, 3.0, 0.25])
    x = torch.tensor([[1.0, 2.0, -1.0, 4.0], [0.3, 0.1, 0.2, -0.5]])
    b = torch.tensor([0.2, -1.0, 0.5, 1.0])
    for method in RULES:
        result = igkit.integrated_gradients(lambda v: v @ w, x, b, steps=7, method=method)
        torch.testing.assert_close(result.attributions, (x - b) * w, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("method", RULES)
def test_matches_captum_on_cnn(method):
    model = TinyCNN().eval()
    x = torch.rand(3, 3, 8, 8)
    b = torch.rand(3, 3, 8, 8) * 0.1
    target = [0, 2, 1]
    ours = igkit.integrated_gradients(model, x, b, target=target, steps=20, method=method)
    theirs = IntegratedGradients(model).attribute(x, b, target=target, n_steps=20, method=method)
    if method == "riemann_trapezoid":
        # Captum's trapezoid weights are 1/n with halved ends, summing to (n - 1)/n instead of 1;
        # ours are the textbook 1/(n - 1). Same nodes, so the two differ by exactly that factor.
        theirs = theirs * 20 / 19
    _assert_relative_close(ours.attributions, theirs)


def test_matches_captum_on_two_input_model():
    model = TwoInputNet().eval()
    x1, x2 = torch.randn(4, 5), torch.randn(4, 3, 4)
    ours = igkit.integrated_gradients(model, (x1, x2), target=1, steps=32)
    theirs = IntegratedGradients(model).attribute((x1, x2), target=1, n_steps=32)
    assert isinstance(ours.attributions, tuple)
    for mine, ref in zip(ours.attributions, theirs):
        _assert_relative_close(mine, ref)


def _assert_relative_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Elementwise within 1e-5 of the largest attribution (relative agreement)."""
    scale = expected.abs().max()
    assert scale > 0
    assert float((actual - expected).abs().max() / scale) < 1e-5


@pytest.mark.parametrize("name,make_model,shapes,target", [
    ("mlp", lambda: nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)), [(5, 6)], 2),
    ("cnn", TinyCNN, [(2, 3, 8, 8)], 1),
    ("two-input", TwoInputNet, [(3, 5), (3, 3, 4)], 0),
    ("softmax-prob", lambda: nn.Sequential(nn.Linear(6, 4), nn.Softmax(dim=1)), [(4, 6)], 3),
])
def test_completeness_on_several_models(name, make_model, shapes, target):
    model = make_model().eval()
    inputs = tuple(torch.rand(shape) for shape in shapes)
    packed = inputs if len(inputs) > 1 else inputs[0]
    fixed = igkit.integrated_gradients(model, packed, target=target, steps=128)
    assert torch.all(fixed.completeness_error < 1e-2), (name, fixed.completeness_error)
    result = igkit.integrated_gradients(model, packed, target=target, tolerance=1e-3)
    assert torch.all(result.completeness_error <= 1e-3), (name, result.completeness_error)
    expected_gap = model(*inputs)[:, target] - model(*(torch.zeros_like(x) for x in inputs))[:, target]
    torch.testing.assert_close(result.score_input - result.score_baseline, expected_gap.detach())


def _figure14_f(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(torch.relu(x[:, 0]) - 1 - torch.relu(x[:, 1]))


def _figure14_g(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(torch.relu(x[:, 0] - 1) - torch.relu(x[:, 1]))


def test_functionally_equivalent_networks_get_identical_attributions():
    """Figure 14: f and g compute the same function, so IG must not tell them apart."""
    x = torch.tensor([[3.0, 1.0]])
    grid = torch.rand(1000, 2) * 6 - 3
    torch.testing.assert_close(_figure14_f(grid), _figure14_g(grid))
    for method in ("riemann_trapezoid", "gausslegendre"):
        a_f = igkit.integrated_gradients(_figure14_f, x, steps=300, method=method).attributions
        a_g = igkit.integrated_gradients(_figure14_g, x, steps=300, method=method).attributions
        torch.testing.assert_close(a_f, a_g, atol=1e-6, rtol=0)
    exact = igkit.integrated_gradients(_figure14_f, x, tolerance=1e-4).attributions
    # Along α(3, 1) the output is relu(2α − 1): both features share the rise from α = 0.5 to 1
    # in proportion 3 : -1 of their gradient contributions, adding up to f(x) = 1.
    torch.testing.assert_close(exact, torch.tensor([[1.5, -0.5]]), atol=1e-3, rtol=0)


def test_adaptive_reaches_tolerance_with_fewer_evaluations_than_a_fixed_grid(record_property):
    model = SaturatingReLUNet().eval()
    x = torch.rand(4, 8) * 2
    adaptive = igkit.integrated_gradients(model, x, tolerance=0.01)
    assert torch.all(adaptive.completeness_error <= 0.01)
    adaptive_evaluations = adaptive.meta["gradient_evaluations"] / x.shape[0]

    fixed_steps = None
    for steps in range(2, 513):
        fixed = igkit.integrated_gradients(model, x, steps=steps)  # the default rule
        if torch.all(fixed.completeness_error <= 0.01):
            fixed_steps = steps
            break
    assert fixed_steps is not None
    record_property("adaptive_evaluations_per_example", adaptive_evaluations)
    record_property("fixed_gausslegendre_steps", fixed_steps)
    print(f"adaptive: {adaptive_evaluations:.1f} gradient evaluations per example; "
          f"fixed Gauss-Legendre grid: {fixed_steps}")
    assert adaptive_evaluations < fixed_steps


def test_adaptive_stops_at_max_steps_with_a_warning():
    def step_function(v):  # a jump: no finite grid integrates it exactly
        return torch.sigmoid(1e4 * (v.sum(1) - 0.3137))

    with pytest.warns(UserWarning, match="did not reach tolerance"):
        result = igkit.integrated_gradients(step_function, torch.ones(1, 2), tolerance=1e-9,
                                            max_steps=33)
    assert len(result.alphas[0]) <= 33


def test_bounded_batch_size_gives_the_same_attributions():
    model = TinyCNN().eval()
    x = torch.rand(3, 3, 8, 8)
    full = igkit.integrated_gradients(model, x, target=0, steps=40, batch_size=10_000)
    small = igkit.integrated_gradients(model, x, target=0, steps=40, batch_size=7)
    torch.testing.assert_close(small.attributions, full.attributions, rtol=1e-5, atol=1e-7)
    adaptive_full = igkit.integrated_gradients(model, x, target=0, tolerance=0.001)
    adaptive_small = igkit.integrated_gradients(model, x, target=0, tolerance=0.001, batch_size=5)
    torch.testing.assert_close(adaptive_small.attributions, adaptive_full.attributions,
                               rtol=1e-5, atol=1e-7)


def test_path_ends_are_the_baseline_and_the_input_bit_for_bit():
    x = torch.randn(3, 5) * 1e-3  # small inputs, large baselines: b + 1·(x − b) would round
    b = torch.randn(3, 5) * 1e3
    seen = []

    def forward(z):
        seen.append(z.detach().clone())
        return z.sum(1)

    igkit.integrated_gradients(forward, x, b, steps=2, method="riemann_trapezoid", batch_size=100)
    path = seen[0]  # rows: α = 0 for every example, then α = 1
    assert torch.equal(path[:3], b) and torch.equal(path[3:6], x)


def test_several_baselines_average_their_attributions():
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).eval()
    x = torch.randn(2, 4)
    stack = torch.randn(3, 2, 4)
    averaged = igkit.integrated_gradients(model, x, stack, steps=30)
    singles = [igkit.integrated_gradients(model, x, stack[k], steps=30) for k in range(3)]
    torch.testing.assert_close(averaged.attributions,
                               sum(r.attributions for r in singles) / 3, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(averaged.score_baseline,
                               sum(r.score_baseline for r in singles) / 3)
    drawn = igkit.integrated_gradients(model, x, lambda inp: stack, steps=30)
    torch.testing.assert_close(drawn.attributions, averaged.attributions)


def test_targets_int_list_and_callable_agree():
    model = nn.Sequential(nn.Linear(3, 4)).eval()
    x = torch.randn(2, 3)
    by_list = igkit.integrated_gradients(model, x, target=[1, 3], steps=5).attributions
    by_int = torch.cat([igkit.integrated_gradients(model, x[i:i + 1], target=t, steps=5).attributions
                        for i, t in enumerate([1, 3])])
    torch.testing.assert_close(by_list, by_int)
    by_callable = igkit.integrated_gradients(model, x, target=lambda out: out[:, 2], steps=5)
    torch.testing.assert_close(by_callable.attributions, x * model[0].weight[2].detach())


def test_forward_args_follow_their_example_along_the_path():
    x = torch.randn(3, 4)
    mask = torch.tensor([[1.0, 1, 0, 0], [0, 1, 1, 0], [1, 1, 1, 1]])
    result = igkit.integrated_gradients(lambda v, m: (v * m).sum(1), x, forward_args=(mask,), steps=4,
                                        batch_size=5)
    torch.testing.assert_close(result.attributions, x * mask)


def test_interior_gradients_and_path_scores_are_returned():
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1)).eval()
    x = torch.randn(2, 3)
    result = igkit.integrated_gradients(model, x, steps=6, return_interior=True)
    alphas = result.alphas[0]
    expected = igkit.gradients_at(model, x, alphas.tolist())[0]  # [A, B, 3]
    for e in range(2):
        torch.testing.assert_close(result.interior[0][e], expected[:, e], rtol=1e-5, atol=1e-6)
        with torch.no_grad():
            torch.testing.assert_close(result.path_scores[e],
                                       model(alphas.float()[:, None] * x[e])[:, 0])


def test_result_round_trips_through_disk(tmp_path):
    model = TwoInputNet().eval()
    result = igkit.integrated_gradients(model, (torch.randn(2, 5), torch.randn(2, 3, 4)), target=0,
                                        tolerance=0.01, return_interior=True)
    loaded = igkit.IGResult.load(result.save(tmp_path / "run"))
    for a, b in zip(loaded.attribution_tuple, result.attribution_tuple):
        torch.testing.assert_close(a, b)
    assert loaded.method == result.method == "adaptive_simpson"
    assert loaded.steps == result.steps
    torch.testing.assert_close(loaded.completeness_error, result.completeness_error)
    for e in range(2):
        torch.testing.assert_close(loaded.alphas[e], result.alphas[e])
        torch.testing.assert_close(loaded.interior[1][e], result.interior[1][e])
    assert loaded.summary(1) == result.summary(1)


def test_adaptive_attributions_are_the_same_whether_or_not_interior_gradients_are_kept():
    """The answer is made of each node's ∇F·(x − b); the gradients themselves are kept only for the
    interior: two inputs, two examples, two baselines, the same attributions either way, and the
    interior gradients are ∇F at the reported α (mean over baselines)."""
    torch.manual_seed(3)
    model = TwoInputNet().eval()
    inputs = (torch.randn(2, 5), torch.randn(2, 3, 4))
    baselines = (0.1 * torch.randn(2, 2, 5), 0.1 * torch.randn(2, 2, 3, 4))
    plain = igkit.integrated_gradients(model, inputs, baselines, target=0, tolerance=0.01)
    kept = igkit.integrated_gradients(model, inputs, baselines, target=0, tolerance=0.01, return_interior=True)
    for a, b in zip(kept.attribution_tuple, plain.attribution_tuple):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    e, n = 1, 2
    alpha = float(kept.alphas[e][n])
    points = [(b[:, e] + alpha * (x[e] - b[:, e])).requires_grad_(True) for x, b in zip(inputs, baselines)]
    first = torch.autograd.grad(model(*points)[:, 0].sum(), points)[0]
    torch.testing.assert_close(kept.interior[0][e][n], first.mean(0), rtol=1e-5, atol=1e-6)
