"""The ``text`` domain: which context words made a language model predict the next word.

``igkit text explain``, ``igkit explain --domain text`` and ``igkit.explain("text", ...)`` all
run through this contract and the core's runner. Items are contexts (arguments, lines of
``--input`` files, or every position of a corpus); contexts of equal length share one
integration call (no padding, so batching never changes a prediction); the decoder runs at
the last position only. Heavy modules (the checkpoint reader, the attribution helpers) are
imported inside the methods, so ``igkit --help`` stays light.
"""
from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from igkit import Integration
from igkit.domain import Attribution, BadItem, Domain, Item, Prepared
from igkit.errors import IGInputError, IgkitWarning
from igkit.printable import printable

from .contexts import DEFAULT_MAX_WORDS, DEFAULT_WINDOW, Context, ContextSpec, parse_context, read_contexts

if TYPE_CHECKING:
    import numpy as np
    import torch

    from igkit import IGResult

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
#: explain options that only transformers causal LMs take (the LSTM refuses them by name)
TRANSFORMERS_SETTINGS = ("contrast", "generate", "baseline", "last_tokens", "max_memory", "trust_remote_code")
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


@dataclass
class TextExplanation:
    """One context's next-word attribution: the runner's :class:`~igkit.Attribution` plus the words.

    ``ig[i]`` and ``gradient[i]`` belong to ``context.tokens[i]`` (probability units: the
    ``ig`` add up to p(context) − p(all-zero embeddings)).
    """

    attribution: Attribution
    context: Context
    target_word: str
    predicted_word: str
    ig: np.ndarray
    gradient: np.ndarray
    scale: bool = False

    @property
    def item(self):
        """The item explained (``item.source``, ``item.name``), as on every domain's result."""
        return self.attribution.item

    @property
    def source(self) -> str:
        return self.attribution.item.source

    @property
    def result(self) -> "IGResult":
        return self.attribution.result

    @property
    def summary(self) -> dict[str, Any]:
        """The core's fields: scores, attribution sum, completeness, this context's own steps."""
        return self.attribution.summary

    @property
    def probability(self) -> float:
        return self.summary["score_input"]

    @property
    def baseline_probability(self) -> float:
        return self.summary["score_baseline"]

    @property
    def total_ig(self) -> float:
        return self.summary["attribution_sum"]

    @property
    def words(self) -> list[str]:
        return self.context.tokens

    def to_dict(self) -> dict[str, Any]:
        """What ``explanation.json`` holds; the tables and pages are drawn from it."""
        methods = self.method_values
        return {"source": self.source, "context": self.context.text, "target": self.target_word,
                "predicted": self.predicted_word, **self.summary,
                "seconds": round(self.attribution.seconds, 4),
                "truncated_from": self.context.truncated_from, "scale": self.scale, "methods": list(methods),
                "method_reductions": {name: word_reduction(name) for name in methods},
                "words": [{"position": i, "word": w, "oov": bool(o), "integrated_gradient": float(a),
                           "gradient": float(g), **{name: float(v[i]) for name, v in methods.items()}}
                          for i, (w, o, a, g) in enumerate(zip(self.context.tokens, self.context.oov,
                                                               self.ig, self.gradient))]}

    @property
    def method_values(self) -> dict[str, "np.ndarray"]:
        """Per word, the other methods asked for (``--methods``): summed over the embedding
        dimensions, or the gradient's L2 norm for the gradient methods (:data:`GRADIENT_METHODS`)."""
        return {name: per_word(name, maps[0][0]) for name, maps in self.attribution.methods.items()}


def word_reduction(method: str) -> str:
    """How a method's ``[words, embedding]`` map becomes one value per word: "norm" or "sum"."""
    return "norm" if method in GRADIENT_METHODS else "sum"


def per_word(method: str, values: Any) -> "np.ndarray":
    """One value per word from a ``[words, embedding]`` tensor (see :func:`word_reduction`)."""
    values = values.detach().float()
    reduced = values.norm(dim=-1) if word_reduction(method) == "norm" else values.sum(-1)
    return reduced.cpu().numpy()


def unavailable_method(method: str) -> str | None:
    """Why ``method`` cannot run in the text domain, or None."""
    return UNAVAILABLE_METHODS.get(method)


class TextDomain(Domain):
    """A context → the probability of its next word (the model's prediction or ``--target``)."""

    name = "text"
    description = ("next-word prediction of a word-level LSTM (shipped: Penn Treebank) or of a transformers "
                   "causal LM (--model FOLDER, a cached Hub id, or ptb-gpt2)")
    integration = TEXT_INTEGRATION
    unavailable_methods = UNAVAILABLE_METHODS
    items_help = ('contexts, e.g. "the shareholders claimed more" (several allowed); or --input FILE')

    # --- options -----------------------------------------------------------------------------
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("text")
        g.add_argument("--input", action="append", default=[], metavar="FILE",
                       help="file with one context per line (CONTEXT<TAB>TARGET names the target); "
                            "may be repeated")
        g.add_argument("--target", default=None,
                       help="explain this next word instead of the model's prediction")
        g.add_argument("--every-position", action="store_true",
                       help="read --input as a tokenised corpus and explain the word that follows at "
                            "every position")
        g.add_argument("--window", type=_positive_int, default=DEFAULT_WINDOW,
                       help="context words per position (--every-position)")
        g.add_argument("--start", type=_non_negative_int, default=0,
                       help="skip this many positions first (--every-position)")
        g.add_argument("--limit", type=_positive_int, default=None,
                       help="at most this many positions (--every-position; None: all)")
        g.add_argument("--max-words", type=_positive_int, default=DEFAULT_MAX_WORDS,
                       help="longer contexts are cut to their last MAX_WORDS words, with a warning "
                            "(the shipped model was trained on 20-word windows)")
        g.add_argument("--scale", action="store_true",
                       help="print attributions x1e-3 (for tiny predictions, as in the paper's Figure 10)")
        g.add_argument("--shared-scale", action="store_true",
                       help="colour the words of every context in the run's attribution.html on one scale "
                            "(the run's largest |IG|); without it each context has its own (the legend says which)")
        from .hf_domain import add_causal_arguments

        add_causal_arguments(parser)

    def sources(self, args: argparse.Namespace) -> list[str | Path]:
        """Contexts, then the ``--input`` files as Path objects (a str item is always a context)."""
        return [*args.items, *(Path(f) for f in getattr(args, "input", None) or [])]

    def settings(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"target": args.target, "every_position": args.every_position, "window": args.window,
                "start": args.start, "limit": args.limit, "max_words": args.max_words, "scale": args.scale,
                **({"shared_scale": True} if getattr(args, "shared_scale", False) else {}),
                **{key: getattr(args, key) for key in TRANSFORMERS_SETTINGS}}

    # --- model -------------------------------------------------------------------------------
    def load_model(self, source: str | None, *, trust_remote_code: bool = False, **settings: Any):
        """An igkit LSTM checkpoint (default: the shipped one) or a transformers causal LM."""
        from .hf_model import is_transformers_source

        if is_transformers_source(source):
            from .hf_model import load_causal_lm

            return load_causal_lm(str(source), trust_remote_code=trust_remote_code)
        from .checkpoint import load_language_model

        return load_language_model(source)

    def model_fingerprint(self, model: Any) -> str:
        from igkit.checkpoint import fingerprint_tensors
        from igkit.domain import content_digest

        from .hf_model import as_causal_lm

        lm = as_causal_lm(model)
        if lm is not None:
            vocabulary = json.dumps(sorted(lm.tokenizer.get_vocab().items()))
            return content_digest(fingerprint_tensors(lm.model.state_dict()), vocabulary)[:16]
        return content_digest(fingerprint_tensors(model.model.state_dict()), model.vocab.fingerprint())[:16]

    # --- items -------------------------------------------------------------------------------
    def read_items(self, sources: Sequence[str | Path], *, target: str | None = None,
                   every_position: bool = False, window: int = DEFAULT_WINDOW, start: int = 0,
                   limit: int | None = None, max_words: int = DEFAULT_MAX_WORDS, **settings: Any
                   ) -> Iterable[Item | BadItem]:
        """Strings are contexts; :class:`~pathlib.Path` objects are files (``--input``)."""
        return read_contexts(sources, target=target, every_position=every_position, window=window,
                             start=start, limit=limit, max_words=max_words)

    def prepare(self, model: Any, value: ContextSpec | str, *, max_words: int = DEFAULT_MAX_WORDS,
                scale: bool = False, **settings: Any) -> Prepared:
        import torch

        from igkit.layers import module_output

        from .attribution import PASS_EMBEDDING_ELEMENTS, next_word_probability

        spec = value if isinstance(value, ContextSpec) else ContextSpec(str(value))
        from .hf_model import as_causal_lm

        lm = as_causal_lm(model)
        if lm is not None:
            from .hf_domain import prepare_causal_item

            return prepare_causal_item(lm, spec, **settings)
        given = [f"--{k.replace('_', '-')}" for k in TRANSFORMERS_SETTINGS
                 if settings.get(k) not in (None, False, "zero")]
        if given:
            raise IGInputError(f"{', '.join(given)} work with transformers causal LMs (--model FOLDER or "
                               f"ptb-gpt2); the LSTM explains the next word from the zero embedding")
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

    def collate(self, group: Sequence[Prepared]) -> Prepared:
        """The core's concatenation; the batch keeps the network (the methods' options need it)."""
        import dataclasses

        batch = super().collate(group)
        if batch is group[0]:
            return batch
        keep = "lm" if "lm" in group[0].context else "net"
        return dataclasses.replace(batch, context={keep: group[0].context[keep]})

    def method_options(self, method: str, batch: Prepared) -> dict[str, Any]:
        """What each method needs here: words as occlusion groups, references for expected gradients.

        * ``occlusion``: one group per word position (all its embedding dimensions), replaced
          by the zero embedding (IG's baseline): a word's value is the drop in probability.
        * ``expected_gradients`` (:data:`EXPECTED_GRADIENT_SAMPLES` draws) / ``multi_baseline_ig``
          (every reference, adaptive to the core's 1%): :data:`REFERENCE_CONTEXTS` contexts of
          the same length whose words are drawn at random from the vocabulary (seeded, weighted
          1/rank: the vocabulary is in training-frequency order, so this follows Zipf's law as
          PTB's unigram frequencies do), as embeddings. Other real contexts are not used: they
          would need the same length as every context explained.
        * ``guided_backprop``: the network, when it has ``nn.ReLU`` modules (the LSTM has none:
          a clear error); ``grad_cam``, ``blur_ig``, ``xrai``: unavailable, with the reason.
        """
        import torch

        if "lm" in batch.context:
            from .hf_domain import causal_method_options

            return causal_method_options(method, batch)
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

    # --- outputs -----------------------------------------------------------------------------
    def explanation(self, attribution: Attribution) -> Any:
        prepared = attribution.prepared
        if "lm" in prepared.context:
            from .hf_explanation import causal_explanation

            return causal_explanation(attribution)
        ig = attribution.result.attribution_tuple[0][0].sum(-1).detach().cpu().numpy()
        return TextExplanation(attribution=attribution, context=prepared.context["context"],
                               target_word=prepared.label, predicted_word=prepared.context["predicted"],
                               ig=ig, gradient=prepared.context["gradient"],
                               scale=prepared.context["scale"])

    def summary_fields(self, explanation: Any) -> dict[str, Any]:
        if not isinstance(explanation, TextExplanation):
            from .hf_explanation import summary_fields

            return summary_fields(explanation)
        context = explanation.context
        return {"context": context.text, "predicted": explanation.predicted_word, "words": context.tokens,
                "unknown_words": context.unknown_words, "truncated_from": context.truncated_from}

    def units(self, explanation: Any) -> list[dict[str, Any]]:
        """Parquet rows (``--format parquet``): one per word (LSTM) or per token with its word's index
        and the word's summed attribution (transformers)."""
        if isinstance(explanation, TextExplanation):
            return [{"unit": i, "label": w, "attribution": float(a), "gradient": float(g)}
                    for i, (w, a, g) in enumerate(zip(explanation.words, explanation.ig, explanation.gradient))]
        words = explanation.word_attributions
        return [{"unit": i, "label": token, "attribution": float(a), "word_index": w,
                 "word_attribution": float(words[w])}
                for i, (token, w, a) in enumerate(zip(explanation.context.tokens, explanation.context.word_index,
                                                      explanation.token_attributions))]

    def write_item(self, explanation: Any, folder: Path, *, pictures: bool = True) -> list[str]:
        if not isinstance(explanation, TextExplanation):
            from .hf_render import write_item_files as write_causal

            return write_causal(explanation.to_dict(), folder, pictures=pictures)
        from igkit.explains import describe

        from .render import write_item_files

        record = {**explanation.to_dict(), "explains": describe(explanation.attribution,
                                                               self.other_scale(explanation))["lines"]}
        return write_item_files(record, folder, pictures=pictures)

    def model_name(self, model: Any, source: str | None) -> str:
        return source if source else "shipped PTB small LSTM (Zaremba et al. 2014, Penn Treebank)"

    def other_scale(self, explanation: Any) -> dict[str, Any] | None:
        """The log-probability beside the probability explained (LSTM contexts)."""
        import math

        if not isinstance(explanation, TextExplanation):
            return None
        log = (lambda p: math.log(p) if p > 0 else float("-inf"))
        return {"name": "log-probability", "input": log(explanation.probability),
                "baseline": log(explanation.baseline_probability)}

    def write_run(self, out_dir: Path, folders: Sequence[Path], *, pictures: bool = True) -> list[str]:
        from .hf_render import read_records, write_run_files as write_causal_run

        records = read_records(folders)
        if records and records[0][1].get("kind") == "transformers":
            return write_causal_run(out_dir, records, pictures=pictures)
        from igkit.records import read_json

        from .render import write_run_files

        run = read_json(out_dir / "run.json") if (out_dir / "run.json").is_file() else {}
        return write_run_files(out_dir, folders, pictures=pictures,
                               shared_scale=bool(run.get("settings", {}).get("shared_scale")))


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


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ {least}, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ {least}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def _warn_about(context: Context, model: Any) -> None:
    """Say once per model and word which words were read as ``<unk>``; say when a context was cut."""
    from .vocab import closest_words

    if context.truncated_from is not None:
        warnings.warn(f"the context {_short(context.text)} has {context.truncated_from} words; explaining "
                      f"its last {len(context.tokens)} (raise --max-words to keep more)", IgkitWarning,
                      stacklevel=3)
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
                  f"read as <unk> (marked * in the tables): {'; '.join(hints)}", IgkitWarning, stacklevel=3)


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
