"""The attribution methods in the text domain: how closely IG integrates, which methods apply, and
how a method's map over word embeddings becomes one value per word.

Shared by the LSTM and the transformers paths and by ``score-methods``; light to import (no torch),
because the domain reads these when the commands are built.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from igkit import Integration

if TYPE_CHECKING:
    import numpy as np

#: the text domain integrates to 0.1%: at 1% the total adds up but one word can still be 10% off
TEXT_INTEGRATION = Integration(tolerance=0.001)

#: methods whose output is a gradient (a direction, not a share of the prediction): a word gets the
#: L2 norm of its embedding's gradient (unsigned); every other method's word value is the sum over
#: the embedding dimensions (signed, in probability units like IG)
GRADIENT_METHODS = frozenset({"saliency", "smoothgrad", "interior_gradient", "guided_backprop"})
#: what ``igkit text score-methods`` scores unless --methods says otherwise
DEFAULT_SCORE_METHODS = ("integrated_gradients", "saliency", "grad_x_input", "occlusion", "smoothgrad")
#: reference contexts (embeddings of random vocabulary words) for expected_gradients / multi_baseline_ig
REFERENCE_CONTEXTS = 16
REFERENCE_SEED = 0
#: Expected Gradients' (baseline, α) draws per context. Measured on 8 PTB validation contexts: the
#: per-word values of two seeds correlate 0.72 at the core's 64 draws, 0.88 at 256, 0.98 at 1024
EXPECTED_GRADIENT_SAMPLES = 256
#: methods the text domain cannot offer, and why (``--methods`` stops with this message)
UNAVAILABLE_METHODS = {
    "grad_cam": "Grad-CAM is not meaningful for an LSTM language model: it weights the channels of a "
                "feature map whose positions line up with the input (a conv layer over an image), but "
                "each LSTM hidden state mixes every earlier word, so a map over hidden states is not a "
                "map over words; use occlusion (one word at a time) or integrated_gradients",
    "guided_backprop": "guided_backprop is not available for the text domain: it changes the backward "
                       "pass at nn.ReLU modules, and the LSTM language model has none (its gates are "
                       "sigmoid/tanh inside nn.LSTM), so it would be the plain gradient; use saliency",
    "blur_ig": "blur_ig is for images ([B, C, H, W]): it blurs neighbouring pixels, and the words of a "
               "context have no such neighbourhood; use integrated_gradients",
    "xrai": "xrai is for images: it ranks image segments; for words use occlusion or integrated_gradients",
}


def unavailable_method(method: str) -> str | None:
    """Why ``method`` cannot run in the text domain, or None."""
    return UNAVAILABLE_METHODS.get(method)


def word_reduction(method: str) -> str:
    """How a method's ``[words, embedding]`` map becomes one value per word: "norm" or "sum"."""
    return "norm" if method in GRADIENT_METHODS else "sum"


def per_word(method: str, values: Any) -> "np.ndarray":
    """One value per word from a ``[words, embedding]`` tensor (see :func:`word_reduction`)."""
    values = values.detach().float()
    reduced = values.norm(dim=-1) if word_reduction(method) == "norm" else values.sum(-1)
    return reduced.cpu().numpy()
