"""Methods beside IG: saliency, gradient × input, interior gradients, SmoothGrad, aggregation."""
from __future__ import annotations

import pytest
import torch
from captum.attr import InputXGradient, Saliency
from torch import nn

import igkit
from igkit.methods import registry as methods

from models import TinyCNN


@pytest.fixture
def cnn():
    return TinyCNN().eval()


def test_saliency_is_the_gradient_at_the_input(cnn):
    x = torch.rand(2, 3, 8, 8)
    ours = methods.saliency(cnn, x, target=1)
    theirs = Saliency(cnn).attribute(x, target=1, abs=False)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(methods.saliency(cnn, x, target=1, absolute=True), theirs.abs())


def test_grad_x_input_matches_captum(cnn):
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(methods.grad_x_input(cnn, x, target=2),
                               InputXGradient(cnn).attribute(x, target=2))


def test_interior_gradient_is_the_gradient_at_the_scaled_input(cnn):
    x = torch.rand(1, 3, 8, 8)
    scaled = (0.3 * x).requires_grad_(True)
    cnn(scaled)[0, 0].backward()
    torch.testing.assert_close(methods.interior_gradient(cnn, x, target=0, alpha=0.3), scaled.grad)


def test_smoothgrad_without_noise_is_its_base_method(cnn):
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(methods.smoothgrad(cnn, x, target=0, noise=0.0, samples=3),
                               methods.saliency(cnn, x, target=0))


def test_smoothgrad_averages_noisy_copies(cnn):
    x = torch.rand(1, 3, 8, 8)
    torch.manual_seed(1)
    smooth = methods.smoothgrad(cnn, x, target=0, noise=0.2, samples=8, seed=3)
    again = methods.smoothgrad(cnn, x, target=0, noise=0.2, samples=8, seed=3)
    torch.testing.assert_close(smooth, again)  # seeded: reproducible
    assert not torch.allclose(smooth, methods.saliency(cnn, x, target=0))


def test_smoothgrad_wraps_integrated_gradients_on_a_linear_model():
    w = torch.tensor([1.0, -2.0, 0.5])
    x = torch.tensor([[1.0, 2.0, 3.0]])
    attr = methods.smoothgrad(lambda v: v @ w, x, base="integrated_gradients", noise=0.1, samples=5,
                              steps=4)
    assert attr.shape == x.shape
    # IG on a linear model is (x' - 0)·w for each noisy x'; the average stays close to x·w
    torch.testing.assert_close(attr, x * w, atol=0.35, rtol=0)


def test_registry_lists_builtins_and_runs_by_name(cnn):
    assert {"integrated_gradients", "saliency", "grad_x_input", "interior_gradient",
            "smoothgrad"} <= set(igkit.METHODS)
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(igkit.attribute("saliency", cnn, x, target=1),
                               methods.saliency(cnn, x, target=1))
    with pytest.raises(igkit.IGInputError, match="unknown attribution method"):
        igkit.get_method("deeplift")


def test_aggregate_pixel_importance_and_embedding_sum():
    attr = torch.tensor([[[[1.0, -2.0]], [[-3.0, 4.0]], [[0.5, 0.5]]]])  # [1, 3 channels, 1, 2]
    torch.testing.assert_close(igkit.aggregate(attr, 1, "sum_abs"), torch.tensor([[[4.5, 6.5]]]))
    torch.testing.assert_close(igkit.aggregate(attr, 1, "sum"), torch.tensor([[[-1.5, 2.5]]]))
    with pytest.raises(igkit.IGInputError):
        igkit.aggregate(attr, 1, "median")


def test_layer_forward_attributes_to_embeddings_and_stays_complete():
    emb = nn.Embedding(10, 4)
    head = nn.Linear(4, 3)

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.head = emb, head

        def forward(self, ids):
            return self.head(torch.tanh(self.emb(ids)).sum(1))

    model = LM().eval()
    ids = torch.tensor([[1, 5, 7], [2, 2, 9]])
    embeddings = igkit.module_output(model, "emb", ids)
    torch.testing.assert_close(embeddings, emb(ids).detach())
    forward = igkit.forward_with_module_output(model, "emb")
    result = igkit.integrated_gradients(forward, embeddings, target=0, forward_args=(ids,),
                                        tolerance=1e-4)
    assert torch.all(result.completeness_error <= 1e-4)
    torch.testing.assert_close(result.score_input, model(ids)[:, 0].detach())
    with pytest.raises(igkit.IGInputError, match="no submodule 'embedding'"):
        igkit.module_output(model, "embedding", ids)
