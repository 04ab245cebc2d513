"""The Penn Treebank model that ships with the package (no data needed: the weights ship)."""
from __future__ import annotations

import pytest
import torch

import igkit
from igkit.plugins.text.checkpoint import DEFAULT_MODEL, load_language_model, model_paths
from igkit.plugins.text.explanation import TextExplanation


@pytest.fixture(scope="module")
def shipped():
    return load_language_model()


def test_shipped_model_is_small_and_meets_the_perplexity_target(shipped):
    weights, _ = model_paths(DEFAULT_MODEL)
    assert weights.stat().st_size < 10_000_000
    assert len(shipped.vocab) == 10000 and shipped.model.config.hidden == 200
    assert shipped.info["training"]["test_perplexity"] <= 120


def test_paper_example_adds_up_within_the_text_default(shipped):
    (exp,) = igkit.explain("text", ["the shareholders claimed more"], model=shipped)
    assert isinstance(exp, TextExplanation) and not any(exp.context.oov)
    assert exp.result.meta["tolerance"] == 0.001     # the domain's default, as on the command line
    with torch.no_grad():
        probs = torch.softmax(shipped.model(torch.tensor([exp.context.ids]))[0][0, -1], -1)
    assert exp.target_word == "than" and exp.predicted_word == "than"
    assert exp.probability == pytest.approx(float(probs.max()), rel=1e-5)
    gap = exp.probability - exp.baseline_probability
    assert abs(exp.ig.sum() - gap) <= 0.001 * abs(gap)
    assert int(exp.ig.argmax()) == 3   # "more", as in the paper's Figure 9
