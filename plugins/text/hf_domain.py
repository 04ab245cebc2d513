"""The text domain's steps for a transformers causal LM: one context made ready for the runner,
and what the other methods (``--methods``) need for it.

Kept apart from :mod:`igkit.plugins.text.lstm_domain` (the LSTM's steps) so each stays small; the domain
calls these when its model is a :class:`~igkit.plugins.text.hf_model.CausalLM`.
"""
from __future__ import annotations

from typing import Any

from igkit.domain import Prepared
from igkit.errors import IGInputError

from .contexts import ContextSpec
from .methods import EXPECTED_GRADIENT_SAMPLES
from .vocab import EOS

#: how a transformers model is named where the refusal comes before the model is loaded
CAUSAL_MODELS = "a transformers causal LM (--model FOLDER, a cached Hub id, or ptb-gpt2)"
#: methods that do not apply to a transformer's token embeddings, and why
CAUSAL_UNAVAILABLE = {
    "guided_backprop": "guided_backprop changes the backward pass at nn.ReLU modules; a transformer's "
                       "GELU/SiLU activations are not ReLUs, so it would be the plain gradient; use saliency",
    "grad_cam": "Grad-CAM weights the channels of a feature map laid out like the input image; a "
                "transformer's hidden states mix every earlier token; use occlusion or integrated_gradients",
    "blur_ig": "blur_ig blurs neighbouring pixels of an image; tokens have no such neighbourhood; use "
               "integrated_gradients",
    "xrai": "xrai ranks image segments; for tokens use occlusion or integrated_gradients",
}


def refusals_for_both_models(lstm: dict[str, str]) -> dict[str, str]:
    """The text domain's ``--methods`` refusals, checked before its model is loaded: each says why
    for the LSTM and, in its own sentence, why for a transformers causal LM."""
    reasons = dict(lstm)
    for method, reason in CAUSAL_UNAVAILABLE.items():
        lstm_part = f"{lstm[method]}. " if method in lstm else ""
        reasons[method] = f"{lstm_part}With {CAUSAL_MODELS}: {reason}"
    return reasons


def prepare_causal_item(lm: Any, spec: ContextSpec, *, target: str | None = None, contrast: str | None = None,
                        generate: int | None = None, baseline: str = "zero", last_tokens: int | None = None,
                        max_memory: str | None = None, **_: Any) -> Prepared:
    """One context of a transformers causal LM (see :mod:`igkit.plugins.text.hf_attribution`)."""
    from .hf_attribution import prepare_causal
    from .hf_inputs import next_token_logits, readouts_for, tokenize_context

    target = spec.target if spec.target is not None else target
    if spec.tokens is not None:  # a corpus position: its words as text, sentence ends as end-of-text
        end = lm.tokenizer.eos_token or "\n"
        spec = ContextSpec(" ".join(end if t == EOS else t for t in spec.tokens), spec.target)
        target = end if target == EOS else target
    tokens = tokenize_context(lm, spec.text, last_tokens, (generate or 1) - 1)
    tokens, readouts = readouts_for(lm, tokens, target=target, contrast=contrast, generate=generate)
    prepared = prepare_causal(lm, tokens, readouts, baseline=baseline, max_memory=max_memory, name=spec.text)
    if readouts.kind == "next":  # the readout is the prediction: no second forward over the context
        predicted = readouts.labels[0]
    else:
        predicted = lm.token_text(int(next_token_logits(lm, tokens.ids[:tokens.prompt_tokens]).argmax()))
    prepared.context["predicted"] = predicted
    return prepared


def causal_method_options(method: str, batch: Prepared) -> dict[str, Any]:
    """Occlusion per token (replaced by the baseline embedding), random-token references for
    expected_gradients / multi_baseline_ig; image-only methods are refused with the reason."""
    import torch

    from .hf_attribution import reference_embeddings

    if method in CAUSAL_UNAVAILABLE:
        raise IGInputError(f"{batch.context['lm'].name} is a transformers causal LM: {CAUSAL_UNAVAILABLE[method]}")
    inputs = batch.inputs
    tokens, dims = inputs.shape[1], inputs.shape[2]
    if method == "occlusion":
        positions = torch.arange(tokens, device=inputs.device)
        return {"groups": positions.unsqueeze(-1).expand(tokens, dims).contiguous()}
    if method == "expected_gradients":
        return {"reference": reference_embeddings(batch.context["lm"], tokens),
                "samples": EXPECTED_GRADIENT_SAMPLES}
    if method == "multi_baseline_ig":
        return {"reference": reference_embeddings(batch.context["lm"], tokens)}
    return {}
