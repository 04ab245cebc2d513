"""The Penn Treebank model that ships with the package (no data needed: the weights ship)."""
from __future__ import annotations

import pytest
import torch

from igkit.plugins.text.checkpoint import DEFAULT_MODEL, load_language_model, model_paths
from igkit.plugins.text.contexts import parse_context
from igkit.plugins.text.explainer import explain_contexts


@pytest.fixture(scope="module")
def shipped():
    return load_language_model()


def test_shipped_model_is_small_and_meets_the_perplexity_target(shipped):
    weights, _ = model_paths(DEFAULT_MODEL)
    assert weights.stat().st_size < 10_000_000
    assert len(shipped.vocab) == 10000 and shipped.model.config.hidden == 200
    assert shipped.info["training"]["test_perplexity"] <= 120


def test_paper_example_adds_up_within_one_percent(shipped):
    context = parse_context("the shareholders claimed more", shipped.vocab)
    assert not any(context.oov)
    (exp,), failed = explain_contexts(shipped, [context], tolerance=0.01)
    assert not failed
    with torch.no_grad():
        probs = torch.softmax(shipped.model(torch.tensor([context.ids]))[0][0, -1], -1)
    assert exp.probability == pytest.approx(float(probs.max()), rel=1e-5)
    gap = exp.probability - exp.baseline_probability
    assert abs(exp.ig.sum() - gap) <= 0.01 * abs(gap)
