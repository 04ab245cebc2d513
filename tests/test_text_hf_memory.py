"""Transformers causal LMs within --max-memory: the saved bytes measured at short lengths predict
those of a long context, checkpointed transformer blocks give the very same gradients with a
fraction of the saved bytes, and the pass plan keeps every block when a point fits, recomputes the
blocks when only that fits, and refuses with the options to change when nothing fits."""
from __future__ import annotations

import warnings

import pytest
import torch

pytest.importorskip("transformers", reason="needs the transformers extra: pip install 'igkit[transformers]'")

import igkit
from igkit.errors import IGInputError, IgkitWarning
from igkit.plugins.text.hf_attribution import log_prob_forward
from igkit.plugins.text.hf_inputs import tokenize_context
from igkit.plugins.text.hf_memory import (
    checkpointed,
    plan_passes,
    point_bytes,
    saved_bytes,
    transformer_blocks,
)
from igkit.plugins.text.hf_model import causal_lm

from hf_models import tiny_gpt2, tiny_tokenizer

NEXT = (torch.zeros(1, 0, dtype=torch.long), torch.tensor([[5]]), torch.ones(1, 1), torch.tensor([[1]]))


@pytest.fixture(scope="module")
def lm():
    torch.set_num_threads(1)
    tokenizer = tiny_tokenizer()
    return causal_lm(tiny_gpt2(tokenizer, positions=2048, width=16, layers=3), tokenizer)


def forward_for(lm):
    return lambda blocks: log_prob_forward(lm, blocks)


def test_blocks_are_the_models_layers(lm):
    assert transformer_blocks(lm.model) == list(lm.model.transformer.h)


def test_saved_bytes_at_short_lengths_predict_a_long_context(lm):
    parameters = {p.data_ptr() for p in lm.model.parameters()}
    for eager in (False, True):  # sdpa keeps O(T) per block; eager attention O(heads × T²)
        lm.model.set_attn_implementation("eager" if eager else "sdpa")
        try:
            plain, outside, per_block = point_bytes(forward_for(lm), lm.model, 600, NEXT, {})
            embeds = torch.zeros(1, 600, 16)
            measured = saved_bytes(log_prob_forward(lm), parameters, embeds, NEXT)
            measured_outside = saved_bytes(log_prob_forward(lm, 3), parameters, embeds, NEXT)
        finally:
            lm.model.set_attn_implementation("sdpa")
        assert plain == pytest.approx(measured, rel=0.02)
        assert outside == pytest.approx(measured_outside, rel=0.02)
        assert per_block == pytest.approx((measured - measured_outside) / 3, rel=0.05)
        assert outside < plain / 3  # the blocks' activations are what checkpointing drops


def test_checkpointed_blocks_give_the_same_gradients_and_are_restored(lm):
    embeds = torch.randn(2, 40, 16)
    grads = []
    for blocks in (0, 1, 3):   # none, some, all of the 3 blocks recomputed
        x = embeds.clone().requires_grad_(True)
        score = log_prob_forward(lm, blocks)(x, *(a.expand(2, *a.shape[1:]) for a in NEXT))[:, -1]
        grads.append(torch.autograd.grad(score.sum(), x)[0])
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grads[2], grads[0], rtol=1e-6, atol=1e-7)
    with checkpointed(transformer_blocks(lm.model)):
        pass
    assert all("forward" not in block.__dict__ for block in lm.model.transformer.h)


def test_plan_keeps_blocks_when_a_point_fits_else_recomputes_else_refuses(lm):
    plain, _, per_block = point_bytes(forward_for(lm), lm.model, 2048, NEXT, {})
    inputs = 3 * 2048 * 16 * 4
    whole = plain + per_block + inputs
    roomy = plan_passes(forward_for(lm), lm.model, 2048, NEXT, f"{int(3 * whole) // 2 ** 20 + 1}MiB", {})
    assert not roomy.checkpoint and roomy.points >= 3
    tight = plan_passes(forward_for(lm), lm.model, 2048, NEXT, f"{int(whole * 0.9) // 2 ** 20}MiB", {})
    assert tight.checkpoint and tight.points >= 1 and tight.points * tight.bytes_per_point <= tight.budget
    # as few blocks recomputed as make one point fit: one block fewer would not
    assert 1 <= tight.checkpointed_blocks <= 3
    fewer = plain - (tight.checkpointed_blocks - 1) * per_block + inputs + (2 if tight.checkpointed_blocks > 1 else 1) * per_block
    assert fewer > tight.budget
    with pytest.raises(IGInputError, match="--max-memory.*--last-tokens"):
        plan_passes(forward_for(lm), lm.model, 2048, NEXT, "1MiB", {})


def test_a_model_without_blocks_to_recompute_is_planned_whole_or_refused_saying_so(lm):
    layers = lm.model.config.num_hidden_layers
    lm.model.config.num_hidden_layers = layers + 1   # no ModuleList of that length: no blocks found
    try:
        assert transformer_blocks(lm.model) == []
        roomy = plan_passes(forward_for(lm), lm.model, 256, NEXT, "64MiB", {})
        assert roomy.checkpointed_blocks == 0 and roomy.points >= 1
        with pytest.raises(IGInputError, match="no transformer blocks to recompute.*--max-memory 1MiB"):
            plan_passes(forward_for(lm), lm.model, 2048, NEXT, "1MiB", {})
    finally:
        lm.model.config.num_hidden_layers = layers


def test_long_context_explained_with_recomputed_blocks_adds_up(lm):
    """2,048 tokens on the CPU within a budget that only fits with the blocks recomputed."""
    text = " ".join(["the stock market fell on monday"] * 400)
    assert len(tokenize_context(lm, text, last_tokens=2048).ids) == 2048
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IgkitWarning)
        found = igkit.explain("text", [text], model=lm, last_tokens=2048, max_memory="10MiB",
                              integration={"tolerance": 0.01})
    assert not found.skipped, [s.reason for s in found.skipped]
    plan = found[0].attribution.prepared.context["memory_plan"]
    assert plan.checkpoint and plan.points >= 1
    assert found[0].summary["converged"] and found[0].summary["completeness_error"] <= 0.01
    assert len(found[0].token_attributions) == 2048
