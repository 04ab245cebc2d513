"""One explained context of a causal LM: per-token and per-word attributions, and their record.

Token values are IG summed over the embedding dimensions (log-probability units); a word's value
is the sum over its tokens, so words add up to the same total as tokens. With several readouts
(a target string, a generated continuation, a contrast) each readout also gets its own column.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from igkit.domain import Attribution, Explanation
from igkit.outputs.explains import describe

from .methods import per_word, word_reduction
from .hf_inputs import Readouts, TokenContext

KIND = "transformers"


@dataclass
class CausalExplanation(Explanation):
    """What ``igkit.explain("text", ..., model=<transformers model>)`` returns per context."""

    attribution: Attribution
    context: TokenContext
    readouts: Readouts
    predicted: str
    baseline: str
    #: [tokens, readouts] each readout's own attribution, or None for one readout
    per_readout: np.ndarray | None = None

    @property
    def token_attributions(self) -> np.ndarray:
        """IG per attributed token (log-probability units)."""
        return self.attribution.result.attribution_tuple[0][0].sum(-1).detach().cpu().numpy()

    @property
    def word_attributions(self) -> np.ndarray:
        """IG per word: the sum over the word's tokens."""
        return sum_by_word(self.token_attributions, self.context.word_index, len(self.context.words))

    @property
    def method_values(self) -> dict[str, np.ndarray]:
        """Per token, the other methods asked for (``--methods``), reduced as in the LSTM tables."""
        return {name: per_word(name, maps[0][0]) for name, maps in self.attribution.methods.items()}

    def to_dict(self) -> dict[str, Any]:
        """``explanation.json``: everything the tables and pages are drawn from."""
        tokens, context = self.token_attributions, self.context
        methods = self.method_values
        words = self.word_attributions
        method_words = {name: sum_by_word(v, context.word_index, len(context.words))
                        for name, v in methods.items() if word_reduction(name) == "sum"}
        readouts = [{"token": label, "token_id": int(t), "sign": s}
                    for label, t, s in zip(self.readouts.labels, self.readouts.token_ids, self.readouts.signs)]
        record = {"kind": KIND, "source": self.source, "context": context.text, "target": self.label,
                  "predicted": self.predicted, "score": self.score_name, "baseline": self.baseline,
                  "target_kind": self.readouts.kind, "readouts": readouts, **self.summary,
                  "seconds": round(self.attribution.seconds, 4), "truncated_from": context.truncated_from,
                  "prompt_tokens": context.prompt_tokens, "methods": list(methods),
                  "method_reductions": {name: word_reduction(name) for name in methods},
                  "tokens": [{"position": i, "token": tok, "word_index": w, "word": context.words[w],
                              "attribution": float(tokens[i]), **{n: float(v[i]) for n, v in methods.items()},
                              **({f"readout_{k}": float(self.per_readout[i, k]) for k in range(len(readouts))}
                                 if self.per_readout is not None else {})}
                             for i, (tok, w) in enumerate(zip(context.tokens, context.word_index))],
                  "words": [{"word_index": i, "word": word, "attribution": float(words[i]),
                             **{n: float(v[i]) for n, v in method_words.items()}}
                            for i, word in enumerate(context.words)],
                  "explains": describe(self.attribution)["lines"]}
        return record

    @property
    def label(self) -> str:
        return self.attribution.prepared.label

    @property
    def score_name(self) -> str:
        """The explained score in words, e.g. "log p(' than')" or "log p(' than') − log p(' as')"
        (a string of several tokens: "Σ log p of 2 tokens ' than the'")."""
        if self.readouts.kind == "contrast":
            signs = self.readouts.signs
            return f"{summed_log_p(self.readouts.side(1.0), signs.count(1.0))} − " \
                   f"{summed_log_p(self.readouts.side(-1.0), signs.count(-1.0))}"
        return summed_log_p("".join(self.readouts.labels), len(self.readouts.labels))


def summed_log_p(text: str, tokens: int) -> str:
    """"log p(' than')" for one token, "Σ log p of 3 tokens ' than the company'" for several."""
    return f"log p({text!r})" if tokens == 1 else f"Σ log p of {tokens} tokens {text!r}"


def sum_by_word(values: np.ndarray, word_index: list[int], words: int) -> np.ndarray:
    """Token values summed per word."""
    out = np.zeros(words, dtype=np.float64)
    np.add.at(out, np.asarray(word_index, dtype=np.int64), np.asarray(values, dtype=np.float64))
    return out


def causal_explanation(attribution: Attribution) -> CausalExplanation:
    """The runner's attribution of one context as a :class:`CausalExplanation` (with the
    per-readout columns when the score reads several tokens)."""
    from .hf_attribution import per_readout

    prepared = attribution.prepared
    columns = per_readout(prepared, attribution.result, None)
    return CausalExplanation(attribution=attribution, context=prepared.context["tokens"],
                             readouts=prepared.context["readouts"], predicted=prepared.context["predicted"],
                             baseline=prepared.context["baseline"],
                             per_readout=None if columns is None else columns.numpy())


def summary_fields(explanation: CausalExplanation) -> dict[str, Any]:
    """What ``summary.json`` (and the Parquet rows of ``--engine ray``) add: tokens and words."""
    record = explanation.to_dict()
    return {"context": record["context"], "predicted": record["predicted"], "score": record["score"],
            "target_kind": record["target_kind"], "baseline": record["baseline"],
            "truncated_from": record["truncated_from"],
            "tokens": [[t["position"], t["token"], t["word_index"], t["attribution"]] for t in record["tokens"]],
            "words": [[w["word_index"], w["word"], w["attribution"]] for w in record["words"]]}
