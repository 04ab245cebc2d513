"""The ``text`` domain: which context words made a language model predict the next word.

``igkit text explain``, ``igkit explain --domain text`` and ``igkit.explain("text", ...)`` all
run through this contract and the core's runner. Items are contexts (arguments, lines of
``--input`` files, or every position of a corpus); contexts of equal length share one
integration call (no padding, so batching never changes a prediction); the decoder runs at
the last position only. The LSTM's steps are in :mod:`~igkit.plugins.text.lstm_domain`, a
transformers model's in :mod:`~igkit.plugins.text.hf_domain`; this class picks them by the model.
Heavy modules (the checkpoint reader, the attribution helpers) are imported inside the methods,
so ``igkit --help`` stays light.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from igkit.domain import Attribution, BadItem, Domain, Item, Prepared
from igkit.errors import IGInputError

from .contexts import DEFAULT_MAX_WORDS, DEFAULT_WINDOW, ContextSpec, read_contexts
from .explanation import TextExplanation
from .hf_domain import refusals_for_both_models
from .lstm_domain import lstm_explanation, lstm_method_options, prepare_lstm_item
from .methods import TEXT_INTEGRATION, UNAVAILABLE_METHODS
from .settings import TRANSFORMERS_SETTINGS, TextSettings


class TextDomain(Domain):
    """A context → the probability of its next word (the model's prediction or ``--target``)."""

    name = "text"
    description = ("next-word prediction of a word-level LSTM (shipped: Penn Treebank) or of a transformers "
                   "causal LM (--model FOLDER, a cached Hub id, or ptb-gpt2)")
    integration = TEXT_INTEGRATION
    unavailable_methods = refusals_for_both_models(UNAVAILABLE_METHODS)
    settings_class = TextSettings
    items_help = ('contexts, e.g. "the shareholders claimed more" (several allowed); or --input FILE')

    # --- options -----------------------------------------------------------------------------
    def sources(self, args: argparse.Namespace) -> list[str | Path]:
        """Contexts, then the ``--input`` files as Path objects (a str item is always a context)."""
        return [*args.items, *(Path(f) for f in getattr(args, "input", None) or [])]

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
        from igkit.io.checkpoint import fingerprint_tensors
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
        """One context made ready for the runner, by the LSTM's steps or a transformers model's."""
        from .hf_model import as_causal_lm

        spec = value if isinstance(value, ContextSpec) else ContextSpec(str(value))
        lm = as_causal_lm(model)
        if lm is not None:
            from .hf_domain import prepare_causal_item

            return prepare_causal_item(lm, spec, **settings)
        given = [f"--{k.replace('_', '-')}" for k in TRANSFORMERS_SETTINGS
                 if settings.get(k) not in (None, False, "zero")]
        if given:
            raise IGInputError(f"{', '.join(given)} work with transformers causal LMs (--model FOLDER or "
                               f"ptb-gpt2); the LSTM explains the next word from the zero embedding")
        return prepare_lstm_item(model, spec, max_words=max_words, scale=scale)

    def collate(self, group: Sequence[Prepared]) -> Prepared:
        """The core's concatenation; the batch keeps the network (the methods' options need it)."""
        import dataclasses

        batch = super().collate(group)
        if batch is group[0]:
            return batch
        keep = "lm" if "lm" in group[0].context else "net"
        return dataclasses.replace(batch, context={keep: group[0].context[keep]})

    def method_options(self, method: str, batch: Prepared) -> dict[str, Any]:
        """What each method needs for this batch's model (see ``lstm_method_options`` and
        ``causal_method_options``); methods that do not apply stop with the reason."""
        if "lm" in batch.context:
            from .hf_domain import causal_method_options

            return causal_method_options(method, batch)
        return lstm_method_options(method, batch)

    # --- outputs -----------------------------------------------------------------------------
    def explanation(self, attribution: Attribution) -> Any:
        if "lm" in attribution.prepared.context:
            from .hf_explanation import causal_explanation

            return causal_explanation(attribution)
        return lstm_explanation(attribution)

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
        from igkit.outputs.explains import describe

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
        from igkit.io.records import read_json

        from .render import write_run_files

        run = read_json(out_dir / "run.json") if (out_dir / "run.json").is_file() else {}
        return write_run_files(out_dir, folders, pictures=pictures,
                               shared_scale=bool(run.get("settings", {}).get("shared_scale")))
