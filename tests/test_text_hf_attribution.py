"""Transformers causal LMs in the text domain: parity with Captum, completeness, the readouts
(next token, target string, contrast, generated continuation) and words from offsets.

Every model here is a randomly initialised GPT-2 configuration built in the test (no download).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("transformers", reason="needs the transformers extra: pip install 'igkit[transformers]'")

import igkit
from igkit.plugins.text.hf_attribution import log_prob_forward
from igkit.plugins.text.hf_inputs import words_from_offsets
from igkit.plugins.text.hf_model import causal_lm

from hf_models import tiny_gpt2, tiny_tokenizer

CONTEXT = "the shareholders claimed more"
FIXED = {"steps": 32, "method": "gausslegendre"}


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def lm(tokenizer):
    torch.set_num_threads(1)
    return causal_lm(tiny_gpt2(tokenizer), tokenizer)


def explain(lm, items, **settings):
    integration = settings.pop("integration", FIXED)
    found = igkit.explain("text", items, model=lm, integration=integration, **settings)
    assert not found.skipped, [s.reason for s in found.skipped]
    return found


def captum_layer_ig(lm, text: str, target_id: int, baseline_id: int) -> torch.Tensor:
    """Captum's LayerIntegratedGradients on the token embedding layer, log p(target) at the end."""
    captum_attr = pytest.importorskip("captum.attr", reason="the Captum oracle needs captum (test extra)")
    ids = torch.tensor([lm.tokenizer(text)["input_ids"]])

    def log_p(input_ids):
        logits = lm.model(input_ids=input_ids, use_cache=False).logits[:, -1]
        return torch.log_softmax(logits, dim=-1)[:, target_id]

    layer_ig = captum_attr.LayerIntegratedGradients(log_p, lm.model.transformer.wte)
    attributions = layer_ig.attribute(ids, baselines=torch.full_like(ids, baseline_id), n_steps=32,
                                      method="gausslegendre")
    return attributions[0].detach()


def test_gauss_legendre_nodes_and_weights_are_captums():
    from captum.attr._utils.approximation_methods import approximation_parameters

    from igkit.attribution.quadrature import quadrature

    step_sizes, alphas = approximation_parameters("gausslegendre")
    nodes, weights = quadrature("gausslegendre", 32)
    np.testing.assert_allclose(nodes, alphas(32), rtol=0, atol=1e-12)
    np.testing.assert_allclose(weights, step_sizes(32), rtol=0, atol=1e-12)


def test_matches_captum_layer_integrated_gradients_on_the_embedding_layer(lm):
    found = explain(lm, [CONTEXT], baseline="eos")
    exp = found[0]
    target = exp.readouts.token_ids[0]
    expected = captum_layer_ig(lm, CONTEXT, target, lm.tokenizer.eos_token_id)
    ours = exp.result.attributions[0]
    scale = expected.abs().max()
    assert float((ours - expected).abs().max() / scale) < 1e-4
    per_token = expected.sum(-1).numpy()
    np.testing.assert_allclose(exp.token_attributions, per_token, rtol=0, atol=1e-4 * float(np.abs(per_token).max()))


def test_score_is_the_models_log_probability_with_its_own_positions(lm):
    """inputs_embeds at α = 1 give exactly the model's own log p(next token): positions untouched."""
    exp = explain(lm, [CONTEXT])[0]
    ids = torch.tensor([lm.tokenizer(CONTEXT)["input_ids"]])
    with torch.no_grad():
        log_p = torch.log_softmax(lm.model(input_ids=ids).logits[0, -1], -1)
    assert exp.readouts.token_ids[0] == int(log_p.argmax())
    assert exp.summary["score_input"] == pytest.approx(float(log_p.max()), abs=1e-5)


def test_adaptive_default_reaches_the_text_tolerance(lm):
    exp = explain(lm, [CONTEXT, "the stock market fell , traders said"], integration={})
    for e in exp:
        assert e.summary["converged"] and e.summary["completeness_error"] <= 1e-3


def test_target_string_columns_add_up_to_the_summed_log_probability(lm):
    exp = explain(lm, [CONTEXT], target="than the company")[0]
    k = len(exp.readouts.token_ids)
    assert k >= 3 and exp.readouts.continuation == exp.readouts.token_ids[:-1]
    ids = lm.tokenizer(CONTEXT)["input_ids"] + exp.readouts.token_ids
    with torch.no_grad():
        log_p = torch.log_softmax(lm.model(input_ids=torch.tensor([ids])).logits[0], -1)
    first = len(ids) - k - 1
    summed = sum(float(log_p[first + j, t]) for j, t in enumerate(exp.readouts.token_ids))
    assert exp.summary["score_input"] == pytest.approx(summed, abs=1e-4)
    assert exp.per_readout.shape == (len(exp.context.ids), k)
    # one fixed rule for the total and the columns: they add up exactly
    np.testing.assert_allclose(exp.per_readout.sum(1), exp.token_attributions, atol=1e-5)


def test_contrast_is_the_difference_of_two_log_probabilities(lm):
    both = explain(lm, [CONTEXT], target="than", contrast="company")[0]
    alone = explain(lm, [CONTEXT], target="than")[0]
    foil = explain(lm, [CONTEXT], target="company")[0]
    assert both.summary["score_input"] == pytest.approx(
        alone.summary["score_input"] - foil.summary["score_input"], abs=1e-5)
    np.testing.assert_allclose(both.token_attributions, alone.token_attributions - foil.token_attributions,
                               atol=1e-5)
    assert both.to_dict()["score"] == "log p(' than') − log p(' company')"


def summed_log_p(lm, prefix, tokens: list[int]) -> float:
    """Known answer: Σ log p(token k | prefix, tokens before k), from one plain forward of the model
    over the prefix (token ids, or embeddings) followed by the tokens."""
    following = lm.embedding(torch.tensor([tokens]))
    embeds = lm.embedding(torch.tensor([prefix])) if isinstance(prefix, list) else prefix
    with torch.no_grad():
        logits = lm.model(inputs_embeds=torch.cat([embeds, following], 1), use_cache=False).logits[0]
    log_p = torch.log_softmax(logits, -1)
    first = embeds.shape[1] - 1
    return sum(float(log_p[first + k, t]) for k, t in enumerate(tokens))


def test_contrast_of_several_tokens_is_the_difference_of_summed_log_probabilities(lm):
    exp = explain(lm, [CONTEXT], target="than the company", contrast="shares of")[0]
    ids = lm.tokenizer(CONTEXT)["input_ids"]
    target = lm.tokenizer(" than the company", add_special_tokens=False)["input_ids"]
    foil = lm.tokenizer(" shares of", add_special_tokens=False)["input_ids"]
    assert len(target) >= 2 and len(foil) >= 2 and len(target) != len(foil)
    assert exp.summary["score_input"] == pytest.approx(
        summed_log_p(lm, ids, target) - summed_log_p(lm, ids, foil), abs=1e-4)
    zero = torch.zeros(1, len(ids), lm.embedding.weight.shape[1])  # the baseline: zero context embeddings
    assert exp.summary["score_baseline"] == pytest.approx(
        summed_log_p(lm, zero, target) - summed_log_p(lm, zero, foil), abs=1e-4)
    gap = exp.summary["score_input"] - exp.summary["score_baseline"]
    assert abs(float(exp.token_attributions.sum()) - gap) <= 1e-3 * abs(gap)  # completeness, 32 points
    assert exp.per_readout.shape == (len(ids), len(target) + len(foil))
    np.testing.assert_allclose(exp.per_readout.sum(1), exp.token_attributions, atol=1e-5)
    assert exp.to_dict()["score"] == (f"Σ log p of {len(target)} tokens ' than the company' − "
                                      f"Σ log p of {len(foil)} tokens ' shares of'")


def test_generated_tokens_are_attributed_over_what_came_before_them(lm):
    exp = explain(lm, [CONTEXT], generate=3)[0]
    prompt = exp.context.prompt_tokens
    assert len(exp.context.ids) == prompt + 2 and exp.readouts.kind == "generate"
    for k in range(3):  # causal: generated token k depends on nothing after position prompt + k - 1
        assert np.all(exp.per_readout[prompt + k:, k] == 0)
        assert np.any(exp.per_readout[:prompt + k, k] != 0)
    np.testing.assert_allclose(exp.per_readout.sum(1), exp.token_attributions, atol=1e-5)


def test_words_are_merged_from_offsets_and_add_up():
    text = "the market, fell"
    offsets = [(0, 3), (4, 10), (10, 11), (12, 14), (14, 16)]
    index, words = words_from_offsets(text, offsets, [" the", " market", ",", " f", "ell"])
    assert words == ["the", "market,", "fell"] and index == [0, 1, 1, 2, 2]


def test_word_table_sums_the_tokens(lm):
    exp = explain(lm, ["the stock market fell , traders said"])[0]
    record = exp.to_dict()
    assert sum(w["attribution"] for w in record["words"]) == pytest.approx(
        sum(t["attribution"] for t in record["tokens"]), abs=1e-6)
    assert [w["word"] for w in record["words"]] == "the stock market fell , traders said".split()


def test_eos_and_token_baselines_are_those_embeddings(lm):
    exp = explain(lm, [CONTEXT], baseline="token: the")[0]
    the = lm.tokenizer(" the", add_special_tokens=False)["input_ids"][0]
    ids = torch.tensor([lm.tokenizer(CONTEXT)["input_ids"]])
    forward = log_prob_forward(lm)
    base = lm.embedding(torch.full_like(ids, the))
    args = (torch.zeros(1, 0, dtype=torch.long), torch.tensor([exp.readouts.token_ids]), torch.ones(1, 1),
            torch.ones(1, 1, dtype=torch.long))
    with torch.no_grad():
        assert exp.summary["score_baseline"] == pytest.approx(float(forward(base, *args)[0, -1]), abs=1e-5)


def test_other_methods_run_per_token(lm):
    found = igkit.explain("text", [CONTEXT], model=lm, integration=FIXED, methods=["occlusion", "saliency"])
    record = found[0].to_dict()
    assert record["methods"] == ["occlusion", "saliency"]
    assert all("occlusion" in t and t["saliency"] >= 0 for t in record["tokens"])


def test_score_methods_ranks_tokens_of_a_transformers_model(lm):
    """Known answer: occlusion with the zero embedding ranks first the token whose zeroing lowers
    the explained probability most, so its top-1 drop (zero) is the largest of every ranking."""
    from igkit.plugins.text.contexts import read_contexts
    from igkit.plugins.text.scoring import score_methods

    items = list(read_contexts([CONTEXT, "the stock market fell on monday", "investors bought more shares of"]))
    scored = score_methods(lm, items, ["integrated_gradients", "occlusion"], integration=FIXED, units="tokens")
    assert scored.positions == 3
    by_method = {}
    for row in scored.contexts:
        by_method.setdefault(row["source"], {})[row["method"]] = row["top1_drop"]
    for drops in by_method.values():
        assert drops["occlusion"] >= max(drops.values()) - 1e-9


def test_parquet_units_are_tokens_with_their_words(lm):
    from igkit.plugins.text.domain import TextDomain

    exp = explain(lm, ["the stock market fell , traders said"])[0]
    rows = TextDomain().units(exp)
    assert [r["label"] for r in rows] == exp.context.tokens
    for row in rows:
        assert row["word_attribution"] == pytest.approx(exp.word_attributions[row["word_index"]])
