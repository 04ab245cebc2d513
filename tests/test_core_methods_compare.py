"""The methods people compare IG with, each against a reference: Captum (occlusion, guided
backprop, Grad-CAM, IG over several baselines), PAIR's ``saliency`` code (Guided IG, XRAI,
Blur IG), exact answers on linear models, completeness, and planted ground truth."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from captum.attr import (FeatureAblation, GuidedBackprop, IntegratedGradients, LayerAttribution,
                         LayerGradCam, Occlusion)
from torch import nn

import igkit
from igkit.methods.backprop import grad_cam, guided_backprop, upsample_cam
from igkit.methods.blur_ig import blur_ig, gaussian_blur
from igkit.methods.expected_gradients import expected_gradients, multi_baseline_ig
from igkit.methods.guided_ig import guided_ig
from igkit.methods.occlusion import occlusion
from igkit.methods.xrai import xrai

from models import TinyCNN, TwoInputNet


def smooth_cnn() -> nn.Module:
    """A CNN without kinks: path integrals converge at their rule's order on it."""
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2),
                         nn.Conv2d(6, 8, 3, padding=1), nn.Softplus(), nn.Flatten(),
                         nn.Linear(128, 3)).eval()


@pytest.fixture
def cnn():
    return TinyCNN().eval()


@pytest.fixture
def pair():
    """PAIR's framework-agnostic ``saliency.core``; its Guided IG still calls numpy's removed
    ``quantile(interpolation=)``, so that module gets a numpy whose quantile accepts it."""
    core = pytest.importorskip("saliency.core")
    module = sys.modules["saliency.core.guided_ig"]
    shim = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    shim.quantile = lambda a, q, interpolation: np.quantile(a, q, method=interpolation)
    original, module.np = module.np, shim
    yield core
    module.np = original


def linear(w: torch.Tensor):
    return lambda v: (v * w).flatten(1).sum(1)


# ---------------------------------------------------------------- occlusion

def test_occlusion_over_patches_is_captum_feature_ablation_shared_by_the_patch(cnn):
    x = torch.rand(2, 3, 8, 8)
    rows, cols = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    groups = (rows // 2 * 4 + cols // 2).expand(3, 8, 8)           # 16 patches of 2×2×3 features
    ours = occlusion(cnn, x, 0.3, target=1, groups=groups, batch_size=5)
    theirs = FeatureAblation(cnn).attribute(x, 0.3, target=1, feature_mask=groups.unsqueeze(0))
    torch.testing.assert_close(ours * 12, theirs, atol=1e-7, rtol=0)
    drops = cnn(x)[:, 1] - cnn(torch.where(groups == 5, 0.3, x))[:, 1]
    torch.testing.assert_close(ours[:, groups == 5].sum(1), drops.detach(), atol=1e-7, rtol=0)


def test_occlusion_groups_span_inputs_like_atoms_with_their_pairs():
    net = TwoInputNet()
    x1, x2 = torch.rand(3, 5), torch.rand(3, 4, 3)
    g1 = torch.arange(5)
    g2 = torch.tensor([[0, 1, 1], [2, 2, 3], [4, 4, 0], [1, 3, 3]])
    ours = occlusion(net, (x1, x2), target=0, groups=(g1, g2.expand(3, 4, 3)))
    theirs = FeatureAblation(net).attribute((x1, x2), target=0, feature_mask=(g1[None], g2[None]))
    size = torch.bincount(torch.cat([g1, g2.flatten()]))
    torch.testing.assert_close(ours[0] * size[g1], theirs[0], atol=1e-7, rtol=0)
    torch.testing.assert_close(ours[1] * size[g2], theirs[1], atol=1e-7, rtol=0)


@pytest.mark.parametrize("patch, stride", [(3, 1), ((2, 4), (2, 4))])
def test_occlusion_sliding_windows_match_captum_occlusion(cnn, patch, stride):
    x = torch.rand(2, 3, 8, 8)
    ours = occlusion(cnn, x, 0.5, target=2, patch=patch, stride=stride)
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    theirs = Occlusion(cnn).attribute(x, target=2, sliding_window_shapes=(3, ph, pw),
                                      strides=(3, sh, sw), baselines=0.5)
    torch.testing.assert_close(ours * (3 * ph * pw), theirs, atol=1e-6, rtol=0)


def test_occlusion_needs_groups_or_a_patch(cnn):
    with pytest.raises(igkit.IGInputError, match="groups= .* or patch="):
        occlusion(cnn, torch.rand(1, 3, 8, 8), target=0)
    with pytest.raises(igkit.IGInputError, match="integer tensor"):
        occlusion(cnn, torch.rand(1, 3, 8, 8), target=0, groups=torch.rand(3, 8, 8))


# ---------------------------------------------------------------- guided backprop, Grad-CAM

@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not", "ignore:Setting backward hooks")
def test_guided_backprop_matches_captum(cnn):
    x = torch.rand(2, 3, 8, 8)
    ours = guided_backprop(cnn, x, target=1, batch_size=1)
    torch.testing.assert_close(ours, GuidedBackprop(cnn).attribute(x, target=1), atol=1e-7, rtol=0)
    assert not torch.allclose(ours, igkit.attribute("saliency", cnn, x, target=1))


def test_guided_backprop_guides_in_place_relus_and_needs_some(cnn):
    inplace = TinyCNN().eval()
    inplace.load_state_dict(cnn.state_dict())
    inplace.features[1] = nn.ReLU(inplace=True)
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(guided_backprop(inplace, x, target=0), guided_backprop(cnn, x, target=0))
    with pytest.raises(igkit.IGInputError, match="no nn.ReLU"):
        guided_backprop(smooth_cnn(), x, target=0)


@pytest.mark.parametrize("index", [0, 3])
def test_grad_cam_matches_captum_layer_grad_cam(cnn, index):
    x = torch.rand(3, 3, 8, 8)
    layer = cnn.features[index]
    ours = grad_cam(cnn, x, target=2, layer=layer, batch_size=2)
    theirs = LayerGradCam(cnn, layer).attribute(x, target=2, relu_attributions=True)
    assert ours.shape == theirs.shape == (3, 1, *((8, 8) if index == 0 else (4, 4)))
    torch.testing.assert_close(ours, theirs.detach(), atol=1e-8, rtol=1e-5)
    up = grad_cam(cnn, x, target=2, layer=layer, upsample=True)
    torch.testing.assert_close(up, upsample_cam(ours, (8, 8)))
    torch.testing.assert_close(up, LayerAttribution.interpolate(theirs, (8, 8), "bilinear").detach(),
                               atol=1e-8, rtol=1e-5)


class AtomNet(nn.Module):
    """Per-atom features [B, N, C] summed into one score: dF/dA[n, c] = v_c for every atom."""

    def __init__(self) -> None:
        super().__init__()
        self.atoms = nn.Sequential(nn.Linear(4, 6), nn.Tanh())
        self.v = nn.Parameter(torch.randn(6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.atoms(x).sum(1) @ self.v


def test_grad_cam_over_atoms_is_relu_of_atom_channels_weighted_by_the_mean_gradient():
    net = AtomNet()
    x = torch.randn(2, 5, 4)
    cam = grad_cam(net, x, layer=net.atoms)
    A = net.atoms(x).detach()
    by_hand = torch.relu((A * net.v.detach()).sum(-1, keepdim=True))   # weights = mean of v over atoms
    assert cam.shape == (2, 5, 1)
    torch.testing.assert_close(cam, by_hand)
    assert (cam == 0).any() and (cam > 0).any()
    with pytest.raises(igkit.IGInputError, match="needs layer="):
        grad_cam(net, x)


# ---------------------------------------------------------------- expected gradients

def test_expected_gradients_is_exact_on_a_linear_model():
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])
    x, reference = torch.rand(3, 4), torch.randn(5, 4)
    result = expected_gradients(linear(w), x, reference, samples=10)   # each reference twice
    torch.testing.assert_close(result.attributions, (x - reference.mean(0)) * w)
    torch.testing.assert_close(result.completeness_delta, torch.zeros(3), atol=1e-6, rtol=0)


def test_expected_gradients_converges_to_ig_averaged_over_the_references():
    net = TwoInputNet()
    xs = (torch.rand(2, 5), torch.rand(2, 4, 3))
    reference = (torch.rand(6, 5), torch.rand(6, 4, 3))
    eg = expected_gradients(net, xs, reference, target=1, samples=6000, seed=1)
    average = multi_baseline_ig(net, xs, reference, target=1, steps=32)
    for a, b in zip(eg.attributions, average.attributions):
        torch.testing.assert_close(a, b, atol=0.01 * float(b.abs().max()), rtol=0)
    assert float(eg.completeness_error.max()) < 0.05
    again = expected_gradients(net, xs, reference, target=1, samples=6000, seed=1)
    torch.testing.assert_close(again.attributions, eg.attributions)


def test_multi_baseline_ig_is_captum_ig_averaged_over_the_references():
    net = smooth_cnn()
    x, reference = torch.rand(2, 3, 8, 8), torch.rand(3, 3, 8, 8)
    ours = multi_baseline_ig(net, x, reference, target=0, steps=16)
    theirs = torch.stack([IntegratedGradients(net).attribute(x, r.expand_as(x), target=0, n_steps=16)
                          for r in reference]).mean(0)
    torch.testing.assert_close(ours.attributions, theirs, atol=1e-7, rtol=1e-5)
    adaptive = multi_baseline_ig(net, x, reference, target=0, tolerance=1e-3)
    assert float(adaptive.completeness_error.max()) <= 1e-3


def test_expected_gradients_through_the_registry_needs_a_reference():
    w = torch.tensor([1.0, 2.0])
    x, reference = torch.rand(2, 2), torch.rand(4, 2)
    attr = igkit.attribute("expected_gradients", linear(w), x, reference=reference, samples=8)
    torch.testing.assert_close(attr, (x - reference.mean(0)) * w)
    torch.testing.assert_close(igkit.attribute("multi_baseline_ig", linear(w), x, reference), attr)
    with pytest.raises(igkit.IGInputError, match="needs reference="):
        igkit.attribute("expected_gradients", linear(w), x)


# ---------------------------------------------------------------- Blur IG

@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_gaussian_blur_is_scipys_even_wider_than_the_image(mode):
    from scipy.ndimage import gaussian_filter
    x = torch.rand(2, 3, 8, 10, dtype=torch.float64)
    for sigma in (0.7, 3.0, 12.0):
        expected = gaussian_filter(x.numpy(), sigma=(0, 0, sigma, sigma), mode=mode, truncate=4.0)
        torch.testing.assert_close(gaussian_blur(x, sigma, mode), torch.from_numpy(expected))


def test_blur_ig_is_exact_on_a_linear_model():
    w = torch.randn(3, 8, 10)
    x = torch.rand(2, 3, 8, 10)
    result = blur_ig(linear(w), x, max_sigma=5.0, steps=7)
    torch.testing.assert_close(result.attributions, w * (x - gaussian_blur(x, 5.0)), atol=1e-6, rtol=0)
    assert float(result.completeness_error.max()) < 1e-5


def test_blur_ig_completeness_and_tolerance_on_a_small_cnn():
    net, x = smooth_cnn(), torch.rand(2, 3, 8, 8)
    assert float(blur_ig(net, x, target=1, max_sigma=4.0, steps=64).completeness_error.max()) < 1e-3
    refined = blur_ig(net, x, target=1, max_sigma=4.0, steps=4, tolerance=1e-4)
    assert refined.steps > 4 and float(refined.completeness_error.max()) <= 1e-4


def test_blur_ig_converges_to_pairs_blur_ig(pair):
    net = smooth_cnn().double()
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)

    def call(batch, call_model_args=None, expected_keys=None):
        t = torch.from_numpy(batch).permute(0, 3, 1, 2).requires_grad_(True)
        net(t)[:, 1].sum().backward()
        return {pair.INPUT_OUTPUT_GRADIENTS: t.grad.permute(0, 2, 3, 1).numpy()}

    theirs = pair.BlurIG().GetMask(x[0].permute(1, 2, 0).numpy(), call, max_sigma=4.0, steps=1000,
                                   grad_step=0.001)
    ours = blur_ig(net, x, target=1, max_sigma=4.0, steps=200, mode="constant").attributions
    # PAIR's sum is first order with a finite-difference dx/dσ: agreement to its error
    np.testing.assert_allclose(ours[0].permute(1, 2, 0).numpy(), theirs, atol=2e-3 * np.abs(theirs).max())


# ---------------------------------------------------------------- Guided IG

@pytest.mark.parametrize("rule", ["left", "trapezoid"])
def test_guided_ig_is_exact_on_a_linear_model(rule):
    w = torch.randn(3, 8, 8)
    x = torch.rand(2, 3, 8, 8)
    result = guided_ig(linear(w), x, 0.3, steps=16, rule=rule)
    torch.testing.assert_close(result.attributions, w * (x - 0.3))
    assert float(result.completeness_error.max()) < 1e-5


@pytest.mark.filterwarnings("ignore:completeness error above")  # 17 points on a ReLU net: expected
def test_guided_ig_on_the_straight_line_is_ig(cnn):
    x = torch.rand(2, 3, 8, 8)
    left = guided_ig(cnn, x, target=1, steps=16, fraction=1.0, max_dist=0.0, rule="left")
    theirs = IntegratedGradients(cnn).attribute(x, target=1, n_steps=16, method="riemann_left")
    torch.testing.assert_close(left.attributions, theirs, atol=1e-7, rtol=1e-5)
    # Captum's trapezoid weights sum to (n − 1)/n, so igkit's own rule is the reference here
    trapezoid = guided_ig(cnn, x, target=1, steps=16, fraction=1.0, max_dist=0.0)
    ig = igkit.integrated_gradients(cnn, x, target=1, steps=17, method="riemann_trapezoid")
    torch.testing.assert_close(trapezoid.attributions, ig.attributions, atol=1e-7, rtol=1e-5)


def test_guided_ig_is_pairs_algorithm(pair):
    net = smooth_cnn().double()
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    baseline = torch.full_like(x, 0.2)

    def grad(v):
        t = torch.from_numpy(v).reshape(1, 3, 8, 8).requires_grad_(True)
        net(t)[0, 1].backward()
        return t.grad.numpy().reshape(v.shape)

    for steps, fraction, max_dist in ((16, 0.25, 0.02), (40, 0.1, 0.1)):
        theirs = pair.guided_ig_impl(x.numpy()[0], baseline.numpy()[0], grad, steps=steps,
                                     fraction=fraction, max_dist=max_dist)
        ours = guided_ig(net, x, baseline, target=1, steps=steps, fraction=fraction,
                         max_dist=max_dist, rule="left").attributions
        np.testing.assert_allclose(ours[0].numpy(), theirs, atol=1e-12)


def test_guided_ig_completeness_on_a_small_cnn_and_tuple_inputs():
    result = guided_ig(smooth_cnn(), torch.rand(2, 3, 8, 8), target=1, steps=16)
    assert float(result.completeness_error.max()) < 1e-3
    net = TwoInputNet()
    refined = guided_ig(net, (torch.rand(2, 5), torch.rand(2, 4, 3)), target=1, steps=4, tolerance=1e-3)
    assert [a.shape for a in refined.attributions] == [(2, 5), (2, 4, 3)]
    assert float(refined.completeness_error.max()) <= 1e-3


# ---------------------------------------------------------------- XRAI

def blocks(seed: int = 0) -> torch.Tensor:
    """A 3×3 grid of flat colour blocks, 16 px each, lightly noised: the segments are the blocks."""
    gen = torch.Generator().manual_seed(seed)
    colours = torch.rand(3, 3, 3, generator=gen)
    image = colours.repeat_interleave(16, 1).repeat_interleave(16, 2)
    return (image + 0.02 * torch.rand(3, 48, 48, generator=gen)).unsqueeze(0)


def test_xrai_ranks_first_the_segment_where_the_evidence_is():
    pytest.importorskip("skimage")
    image = blocks()
    evidence = torch.zeros(48, 48, dtype=torch.bool)
    evidence[16:32, 32:48] = True                                      # the middle-right block
    result = xrai(linear(evidence), image, resize=None, min_size=50, steps=4)
    assert result.scores.shape == result.ranks.shape == (1, 1, 48, 48)
    assert bool((result.ranks[0, 0][evidence] == 1).all())
    assert float(result.scores[0, 0][evidence].min()) == float(result.scores.max())
    near = torch.zeros_like(evidence)
    near[11:37, 27:48] = True                                          # the block grown by the dilation
    assert bool(near[result.ranks[0, 0] == 1].all())


def test_xrai_matches_pairs_xrai(pair):
    image = blocks(1)
    attributions = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(2)) ** 3
    ours = xrai(None, image, attributions=attributions)
    theirs = pair.XRAI().GetMaskWithDetails(image[0].permute(1, 2, 0).numpy(), lambda *a, **k: None,
                                            base_attribution=attributions[0].permute(1, 2, 0).numpy())
    np.testing.assert_allclose(ours.scores[0, 0].numpy(), theirs.attribution_mask, atol=1e-6)


def test_xrai_says_how_to_get_scikit_image(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(igkit.IGInputError, match="pip install scikit-image"):
        xrai(linear(torch.ones(3, 8, 8)), torch.rand(1, 3, 8, 8))


# ---------------------------------------------------------------- shared behaviour

class Scaled(nn.Module):
    """A model with a per-example tensor argument that must follow its example."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(4 * 8 * 8, 2))

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.body(x) * scale[:, None]


@pytest.mark.parametrize("name, options", [
    ("occlusion", {"patch": 4}),
    ("guided_backprop", {}),
    ("grad_cam", {}),
    ("blur_ig", {"max_sigma": 2.0, "steps": 4}),
    ("guided_ig", {"steps": 4}),
])
def test_forward_args_follow_their_example(name, options):
    net = Scaled()
    x, scale = torch.rand(3, 3, 8, 8), torch.tensor([1.0, -2.0, 0.5])
    if name == "grad_cam":
        options = {"layer": net.body[1]}
    batched = igkit.attribute(name, net, x, target=1, forward_args=(scale,), batch_size=2, **options)
    alone = torch.cat([igkit.attribute(name, net, x[i:i + 1], target=1, forward_args=(scale[i:i + 1],),
                                       **options) for i in range(3)])
    torch.testing.assert_close(batched, alone)
    assert batched.abs().sum() > 0


def test_every_new_method_is_listed_with_what_it_needs():
    docs = {name: (igkit.get_method(name).__doc__ or "").strip().splitlines()[0]
            for name in ("occlusion", "guided_backprop", "grad_cam", "expected_gradients",
                         "multi_baseline_ig", "blur_ig", "guided_ig", "xrai")}
    assert "needs groups= or patch=" in docs["occlusion"]
    assert "needs layer=" in docs["grad_cam"]
    assert "needs reference=" in docs["expected_gradients"]
    assert "needs model=" in docs["guided_backprop"]


@pytest.mark.parametrize("name", ["smoothgrad", "expected_gradients"])
def test_random_methods_give_an_example_the_same_answer_alone_or_in_a_batch(name):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).eval()
    forward = lambda v: net(v)[:, 0]  # noqa: E731
    x = torch.rand(3, 4)
    options = {"reference": torch.rand(5, 4), "samples": 16} if name == "expected_gradients" else {"samples": 4}
    together = igkit.attribute(name, forward, x, **options)
    alone = igkit.attribute(name, forward, x[1:2], **options)
    torch.testing.assert_close(together[1:2], alone, rtol=1e-5, atol=1e-7)
