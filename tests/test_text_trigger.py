"""A language model trained on a corpus where one earlier trigger word decides the next word.

The answer is known by construction: the trigger must carry the largest IG
attribution. The trained model is confident (saturated), so gradients at the
input are tiny and do not point at the trigger reliably.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients
from torch import nn

import igkit
import igkit.run.runner
from igkit.errors import IGInputError
from igkit.plugins.text.attribution import explain_next_word, next_word_probability
from igkit.plugins.text.checkpoint import LanguageModel
from igkit.plugins.text.model import LMConfig, WordLSTM
from igkit.plugins.text.saturation import random_windows, saturation_curves, write_saturation
from igkit.plugins.text.vocab import Vocabulary

FILLERS = [f"w{i}" for i in range(16)]
WORDS = ["<unk>", "<eos>", "alpha", "beta", "then", "yes", "no"] + FILLERS
ID = {w: i for i, w in enumerate(WORDS)}
LENGTH = 6


def trigger_batch(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Contexts of fillers with one trigger (alpha → yes, beta → no) at a random place; then "then"."""
    ids = torch.randint(ID[FILLERS[0]], ID[FILLERS[-1]] + 1, (n, LENGTH), generator=generator)
    where = torch.randint(0, LENGTH - 1, (n,), generator=generator)
    is_alpha = torch.rand(n, generator=generator) < 0.5
    ids[torch.arange(n), where] = torch.where(is_alpha, ID["alpha"], ID["beta"])
    ids[:, -1] = ID["then"]
    return ids, where, torch.where(is_alpha, ID["yes"], ID["no"])


@pytest.fixture(scope="module")
def trigger_model() -> WordLSTM:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = WordLSTM(LMConfig(vocab_size=len(WORDS), hidden=24, layers=1, init_scale=0.3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(250):
        ids, _, nxt = trigger_batch(64, generator)
        logits, _ = model(ids)
        loss = nn.functional.cross_entropy(logits[:, -1], nxt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def held_out() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return trigger_batch(40, torch.Generator().manual_seed(123))


@pytest.fixture(scope="module")
def explained(trigger_model, held_out):
    ids, _, nxt = held_out
    return explain_next_word(trigger_model, "embedding", ids, nxt.tolist(), tolerance=0.01)


def test_model_learned_the_rule(trigger_model, held_out):
    ids, _, nxt = held_out
    probs = torch.softmax(trigger_model(ids)[0][:, -1], -1)
    assert (probs.argmax(-1) == nxt).all()
    assert probs[torch.arange(len(nxt)), nxt].min() > 0.9


def test_ig_puts_the_largest_attribution_on_the_trigger(explained, held_out):
    _, where, _ = held_out
    assert (explained.ig.argmax(-1) == where).all()


def test_gradients_at_the_input_are_tiny_and_unreliable(explained, held_out):
    _, where, _ = held_out
    result = explained.result
    gap = result.score_input - result.score_baseline
    grad_total = explained.gradient.sum(-1)
    # saturation: the gradient at the input explains a small share of the prediction
    assert (grad_total.abs() < 0.25 * gap.abs()).float().mean() >= 0.9
    grad_hits = (explained.gradient.argmax(-1) == where).float().mean()
    ig_hits = (explained.ig.argmax(-1) == where).float().mean()
    assert grad_hits < ig_hits


def test_completeness_within_one_percent(explained):
    assert explained.result.completeness_error.max() <= 0.01
    np.testing.assert_allclose(explained.ig.sum(-1), explained.result.attribution_sum, rtol=1e-5, atol=1e-7)


def test_agrees_with_captum(trigger_model, held_out):
    ids = held_out[0][:5]
    targets = held_out[2][:5]
    mine = explain_next_word(trigger_model, "embedding", ids, targets.tolist(), steps=32, method="gausslegendre")
    forward = next_word_probability(trigger_model, "embedding")
    embeddings = trigger_model.embedding(ids).detach()
    theirs = IntegratedGradients(forward).attribute(embeddings, baselines=torch.zeros_like(embeddings),
                                                    target=targets, additional_forward_args=(ids,),
                                                    n_steps=32, method="gausslegendre")
    torch.testing.assert_close(mine.result.attributions, theirs.float(), rtol=1e-3, atol=1e-6)


def test_output_layer_at_the_last_position_only_changes_nothing(trigger_model, held_out):
    ids, nxt = held_out[0][:6], held_out[2][:6]
    full = explain_next_word(trigger_model, "embedding", ids, nxt.tolist(), steps=16)
    last = explain_next_word(trigger_model, "embedding", ids, nxt.tolist(), steps=16, output_layer="decoder")
    torch.testing.assert_close(last.result.attributions, full.result.attributions, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(last.gradient, full.gradient, rtol=1e-5, atol=1e-7)
    assert not trigger_model.decoder._forward_pre_hooks  # the hook is gone after every call


def test_an_output_layer_that_does_not_take_hidden_states_is_refused(trigger_model, held_out):
    with pytest.raises(IGInputError, match="output_layer must receive hidden states"):
        explain_next_word(trigger_model, "embedding", held_out[0][:2], steps=4, output_layer="embedding")


def test_gru_language_model_through_the_api():
    class GRULM(nn.Module):
        def __init__(self):
            super().__init__()
            self.words = nn.Embedding(len(WORDS), 8)
            self.rnn = nn.GRU(8, 8, batch_first=True)
            self.out = nn.Linear(8, len(WORDS))

        def forward(self, ids):
            return self.out(self.rnn(self.words(ids))[0])

    torch.manual_seed(1)
    model = GRULM()
    ids = trigger_batch(3, torch.Generator().manual_seed(5))[0]
    run = explain_next_word(model, "words", ids, tolerance=0.01)
    probs = torch.softmax(model(ids)[:, -1], -1)
    torch.testing.assert_close(run.result.score_input, probs[torch.arange(3), run.targets])
    assert run.result.completeness_error.max() <= 0.01
    assert model.training  # the caller's mode is restored


def test_grouping_by_length_gives_the_same_numbers_as_one_at_a_time(trigger_model, monkeypatch):
    lm = LanguageModel(trigger_model, Vocabulary(WORDS))
    texts = ["w1 alpha w2 then", "beta w3 w4 w5 w6 then", "w7 alpha w8 then", "alpha then"]
    calls = []
    real = igkit.run.runner.integrated_gradients

    def counted(forward, inputs, *args, **kwargs):
        calls.append(inputs.shape[0])
        return real(forward, inputs, *args, **kwargs)

    monkeypatch.setattr(igkit.run.runner, "integrated_gradients", counted)
    together = igkit.explain("text", texts, model=lm, integration={"steps": 16})
    monkeypatch.undo()
    assert sorted(calls) == [1, 1, 2]   # the two 4-word contexts share one call, nothing is padded
    assert [e.context.text for e in together] == texts
    for exp, text in zip(together, texts):
        (alone,) = igkit.explain("text", [text], model=lm, integration={"steps": 16})
        np.testing.assert_allclose(exp.ig, alone.ig, rtol=1e-4, atol=1e-7)
        assert exp.target_word == alone.target_word and exp.target_word == ("yes" if "alpha" in text else "no")


def test_explain_next_word_defaults_to_the_text_domain_integration(trigger_model, held_out):
    run = explain_next_word(trigger_model, "embedding", held_out[0][:2])
    assert run.result.meta["tolerance"] == 0.001 and run.result.method == "adaptive_simpson"
    fixed = explain_next_word(trigger_model, "embedding", held_out[0][:2], steps=8)
    assert fixed.result.method == "gausslegendre" and fixed.result.steps == 8


def test_saturation_curves_run_from_baseline_to_prediction(trigger_model, held_out, explained, tmp_path):
    lm = LanguageModel(trigger_model, Vocabulary(WORDS))
    ids = held_out[0]
    curves = saturation_curves(lm, ids, alphas=11)
    probs = torch.tensor(curves["probability"])
    assert probs.shape == (len(ids), 11)
    torch.testing.assert_close(probs[:, 0], explained.result.score_baseline, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(probs[:, -1], explained.result.score_input, rtol=1e-4, atol=1e-6)
    assert curves["predicted"] == [WORDS[i] for i in held_out[2].tolist()]
    paths = write_saturation(curves, tmp_path)
    assert [p.name for p in paths] == ["saturation.png", "saturation.csv", "saturation.json"]
    assert len((tmp_path / "saturation.csv").read_text().splitlines()) == 1 + 11 * len(ids)


def test_random_windows_are_seeded_slices():
    stream = torch.arange(100)
    windows = random_windows(stream, 5, 10, seed=7)
    assert torch.equal(windows, random_windows(stream, 5, 10, seed=7))
    assert torch.equal(windows[:, 1:] - windows[:, :-1], torch.ones(5, 9, dtype=torch.long))
