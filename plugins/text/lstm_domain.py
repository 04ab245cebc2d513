"""The text domain's steps for the word-level LSTM: one context made ready for the runner, what
the other methods (``--methods``) need for it, and its attribution as a :class:`TextExplanation`.

Kept apart from :mod:`igkit.plugins.text.domain` (which picks the LSTM's or the transformers'
steps, :mod:`igkit.plugins.text.hf_domain`, by the model) so each stays small. torch and the
attribution helpers are imported inside the functions, so ``igkit --help`` stays light.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from igkit.domain import Attribution, Prepared
from igkit.errors import IGInputError, IgkitWarning
from igkit.outputs.printable import printable

from .contexts import DEFAULT_MAX_WORDS, Context, ContextSpec, parse_context
from .explanation import TextExplanation
from .methods import EXPECTED_GRADIENT_SAMPLES, REFERENCE_CONTEXTS, REFERENCE_SEED, unavailable_method

if TYPE_CHECKING:
    import torch


def prepare_lstm_item(model: Any, spec: ContextSpec, *, max_words: int = DEFAULT_MAX_WORDS,
                      scale: bool = False) -> Prepared:
    """One context of an igkit LSTM checkpoint (``model.model``, ``model.vocab``): its embeddings,
    the next-word probability to integrate, and the gradient × embedding column of the tables."""
    import torch

    from igkit.attribution.layers import module_output

    from .attribution import PASS_EMBEDDING_ELEMENTS, next_word_probability

    context = parse_context(spec, model.vocab, max_words)
    _warn_about(context, model)
    net = model.model
    ids = torch.tensor([context.ids], dtype=torch.long, device=next(net.parameters()).device)
    forward = next_word_probability(net, net.embedding, output_layer=net.decoder)
    embeddings = module_output(net, net.embedding, ids)
    # the prediction and gradient x embedding at the input, from one forward and backward
    point = embeddings.clone().requires_grad_(True)
    with torch.enable_grad():
        probabilities = forward(point, ids)
        predicted = int(probabilities[0].argmax())
        target = predicted if context.target is None else int(context.target)
        (grad,) = torch.autograd.grad(probabilities[0, target], point)
    gradient = (grad * embeddings)[0].sum(-1).detach().cpu().numpy()
    words = model.vocab.words
    chosen = ("the model's own prediction" if target == predicted
              else f"given by --target; the model predicts '{words[predicted]}'")
    return Prepared(name=spec.text, inputs=embeddings, forward=forward, target=target,
                    forward_args=(ids,), label=words[target], scale="probability",
                    target_meaning=f"probability that the next word is '{words[target]}' ({chosen})",
                    baseline_name="all-zero word embeddings (the paper's)",
                    context={"context": context, "predicted": words[predicted], "gradient": gradient,
                             "scale": bool(scale), "net": net},
                    group=("words", len(context.ids)),
                    batch_size=max(1, PASS_EMBEDDING_ELEMENTS // embeddings[0].numel()))


def lstm_method_options(method: str, batch: Prepared) -> dict[str, Any]:
    """What each method needs here: words as occlusion groups, references for expected gradients.

    * ``occlusion``: one group per word position (all its embedding dimensions), replaced
      by the zero embedding (IG's baseline): a word's value is the drop in probability.
    * ``expected_gradients`` (``EXPECTED_GRADIENT_SAMPLES`` draws) / ``multi_baseline_ig``
      (every reference, adaptive to the core's 1%): ``REFERENCE_CONTEXTS`` contexts of
      the same length whose words are drawn at random from the vocabulary (seeded, weighted
      1/rank: the vocabulary is in training-frequency order, so this follows Zipf's law as
      PTB's unigram frequencies do), as embeddings. Other real contexts are not used: they
      would need the same length as every context explained.
    * ``guided_backprop``: the network, when it has ``nn.ReLU`` modules (the LSTM has none:
      a clear error); ``grad_cam``, ``blur_ig``, ``xrai``: unavailable, with the reason.
    """
    import torch

    net = batch.context["net"]
    inputs = batch.inputs
    words, dims = inputs.shape[1], inputs.shape[2]
    if method == "guided_backprop" and any(isinstance(m, torch.nn.ReLU) for m in net.modules()):
        return {"model": net}
    if unavailable_method(method):
        raise IGInputError(unavailable_method(method))
    if method == "occlusion":
        positions = torch.arange(words, device=inputs.device)
        return {"groups": positions.unsqueeze(-1).expand(words, dims).contiguous()}
    if method == "expected_gradients":
        return {"reference": reference_embeddings(net, words), "samples": EXPECTED_GRADIENT_SAMPLES}
    if method == "multi_baseline_ig":
        return {"reference": reference_embeddings(net, words)}
    return {}


def reference_embeddings(net: Any, words: int, contexts: int = REFERENCE_CONTEXTS,
                         seed: int = REFERENCE_SEED) -> "torch.Tensor":
    """``[contexts, words, hidden]``: embeddings of random vocabulary words, P(rank r) ∝ 1/(r + 1).

    The same length always gets the same references (seeded), whatever else is in the batch.
    """
    import torch

    weight = net.embedding.weight
    vocab = weight.shape[0]
    generator = torch.Generator().manual_seed(seed * 1_000_003 + words)
    zipf = 1.0 / torch.arange(1, vocab + 1, dtype=torch.float64)
    ids = torch.multinomial(zipf, contexts * words, replacement=True, generator=generator)
    return weight.detach()[ids.to(weight.device)].reshape(contexts, words, -1)


def lstm_explanation(attribution: Attribution) -> TextExplanation:
    """The runner's attribution of one LSTM context, with IG summed per word."""
    prepared = attribution.prepared
    ig = attribution.result.attribution_tuple[0][0].sum(-1).detach().cpu().numpy()
    return TextExplanation(attribution=attribution, context=prepared.context["context"],
                           target_word=prepared.label, predicted_word=prepared.context["predicted"],
                           ig=ig, gradient=prepared.context["gradient"], scale=prepared.context["scale"])


def _warn_about(context: Context, model: Any) -> None:
    """Say once per model and word which words were read as ``<unk>``; say when a context was cut."""
    from .vocab import closest_words

    if context.truncated_from is not None:
        warnings.warn(f"the context {_short(context.text)} has {context.truncated_from} words; explaining "
                      f"its last {len(context.tokens)} (raise --max-words to keep more)", IgkitWarning,
                      stacklevel=4)
    warned = model.warned_words
    new = [w for w in dict.fromkeys(context.unknown_words) if w not in warned]
    if not new:
        return
    warned.update(new)
    hints = []
    for word in new:
        close = closest_words(word, model.vocab, n=3)
        shown = printable(word, 40)
        hints.append(f"{shown} (close: {', '.join(close)})" if close else shown)
    warnings.warn(f"{len(new)} word(s) of {_short(context.text)} are not in the model's vocabulary and are "
                  f"read as <unk> (marked * in the tables): {'; '.join(hints)}", IgkitWarning, stacklevel=4)


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
