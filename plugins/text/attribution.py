"""Next-word attribution for any word-level LSTM/GRU language model.

IG runs over the embedding vectors of all context words at once, scaled toward
zero by one α (the paper's counterfactuals); the score is the softmax
probability of the next word, so attributions are in probability units and add
up to p(x) − p(0). Works for any model that maps ids ``[batch, time]`` to logits
``[batch, time, vocab]`` (or a tuple whose first element is those logits): the
user names the embedding module.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

from igkit import IGResult, Integration, forward_with_module_output, integrated_gradients, module_output
from igkit.errors import IGInputError
from igkit.attribution.layers import resolve_module
from igkit.methods.registry import grad_x_input
from igkit.options import DEFAULT_FIXED_STEPS

from .methods import TEXT_INTEGRATION

Logits = Callable[[Any], torch.Tensor]

#: embedding elements per pass of path points when the caller sets no ``batch_size``: about
#: 130 points of a 20-word context on the shipped model. Passes that size ran fastest on 2 CPU
#: cores (100 PTB predictions, 50 steps: 2.40 s at 100 points per pass, 2.93 s at the core's
#: default of 1048, sized for memory by input elements alone)
PASS_EMBEDDING_ELEMENTS = 2 ** 19
INTEGRATION_FIELDS = frozenset(Integration.__dataclass_fields__)


def first_output(out: Any) -> torch.Tensor:
    """Logits of a model returning ``logits`` or ``(logits, state)``."""
    return out[0] if isinstance(out, (tuple, list)) else out


@dataclass
class WordAttributions:
    """One IG run over a batch of equally long contexts."""

    result: IGResult
    targets: torch.Tensor       # [B] next-word ids that were explained
    predicted: torch.Tensor     # [B] the model's own most likely next word
    ig: torch.Tensor            # [B, T] IG per context word (sum over embedding dims)
    gradient: torch.Tensor      # [B, T] gradient × embedding at the input, per word


def next_word_probability(model: nn.Module, embedding: nn.Module | str,
                          logits_of: Logits = first_output,
                          output_layer: nn.Module | str | None = None) -> Callable[..., torch.Tensor]:
    """``f(embeddings, ids)``: softmax over the vocabulary after the last context word.

    ``output_layer`` names the position-wise layer that maps hidden states
    ``[batch, time, hidden]`` to logits (the decoder). Named, it runs on the last
    position only: the other positions' logits are never used, and over a large
    vocabulary they are most of each path point's forward and backward work.
    """
    def last_step_probability(out: Any) -> torch.Tensor:
        return torch.softmax(logits_of(out)[:, -1, :], dim=-1)

    forward = forward_with_module_output(model, embedding, score=last_step_probability)
    if output_layer is None:
        return forward
    layer = resolve_module(model, output_layer)

    def last_position_forward(*args: Any) -> torch.Tensor:
        handle = layer.register_forward_pre_hook(_last_position_only)
        try:
            return forward(*args)
        finally:
            handle.remove()

    return last_position_forward


def _last_position_only(_module: nn.Module, args: tuple) -> tuple:
    hidden = args[0]
    if not isinstance(hidden, torch.Tensor) or hidden.dim() != 3:
        shape = tuple(hidden.shape) if isinstance(hidden, torch.Tensor) else type(hidden).__name__
        raise IGInputError(f"output_layer must receive hidden states [batch, time, hidden], got {shape}; "
                           f"name the layer that maps them to logits, or leave output_layer out")
    return (hidden[:, -1:], *args[1:])


def explain_next_word(model: nn.Module, embedding: nn.Module | str, ids: torch.Tensor,
                      targets: Sequence[int | None] | torch.Tensor | None = None, *,
                      logits_of: Logits = first_output, output_layer: nn.Module | str | None = None,
                      **ig_options: Any) -> WordAttributions:
    """Attribute the probability of each row's next word to the words of ``ids [B, T]``.

    For any word-level language model; the shipped one is simpler to use through
    ``igkit.explain("text", contexts)``. ``targets[b]`` is the next word to explain (None:
    the model's prediction). ``output_layer`` (see :func:`next_word_probability`) makes each
    path point cheaper. ``ig_options`` go to :func:`igkit.integrated_gradients`; integration
    defaults to the text domain's (adaptive to 0.1%, :data:`TEXT_INTEGRATION`) unless
    ``steps``/``method``/``tolerance`` say otherwise; ``batch_size`` (path points per pass) is by
    default sized for speed, see ``PASS_EMBEDDING_ELEMENTS``. The model is run in eval mode (no
    dropout along the path) and put back as it was.
    """
    if ids.dim() != 2 or ids.shape[1] == 0:
        raise IGInputError(f"context ids must be [batch, time] with at least one word, got "
                           f"shape {tuple(ids.shape)}")
    was_training = model.training
    model.eval()
    try:
        forward = next_word_probability(model, embedding, logits_of, output_layer)
        embeddings = module_output(model, embedding, ids)
        with torch.no_grad():
            predicted = forward(embeddings, ids).argmax(-1)
        chosen = _targets(targets, predicted)
        ig_options = _with_text_defaults(ig_options)
        if ig_options.get("batch_size") is None:
            ig_options["batch_size"] = max(1, PASS_EMBEDDING_ELEMENTS // embeddings[0].numel())
        result = integrated_gradients(forward, embeddings, target=chosen, forward_args=(ids,),
                                      **ig_options)
        grad_x = grad_x_input(forward, embeddings, target=chosen, forward_args=(ids,),
                              batch_size=ig_options.get("batch_size"))
    finally:
        model.train(was_training)
    return WordAttributions(result=result, targets=chosen, predicted=predicted,
                            ig=result.attributions.sum(-1).detach(), gradient=grad_x.sum(-1).detach())


def _with_text_defaults(ig_options: dict[str, Any]) -> dict[str, Any]:
    """The text domain's integration unless the caller chose a rule, a tolerance or other limits."""
    chosen = {k: v for k, v in ig_options.items() if k in INTEGRATION_FIELDS and v is not None}
    if "steps" in chosen or "method" in chosen:
        integration = Integration(**{"steps": DEFAULT_FIXED_STEPS, **chosen})
    else:
        integration = TEXT_INTEGRATION.with_overrides(**chosen)
    rest = {k: v for k, v in ig_options.items() if k not in INTEGRATION_FIELDS}
    return {**integration.keywords(), **rest}


def _targets(targets: Sequence[int | None] | torch.Tensor | None, predicted: torch.Tensor) -> torch.Tensor:
    if targets is None:
        return predicted.clone()
    targets = list(targets)
    if len(targets) != predicted.numel():
        raise IGInputError(f"got {len(targets)} targets for {predicted.numel()} contexts")
    chosen = [int(p) if t is None else int(t) for t, p in zip(targets, predicted.tolist())]
    return torch.tensor(chosen, dtype=torch.long)
