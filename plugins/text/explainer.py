"""Explaining many contexts with a PTB model: equal lengths share one IG call, results per context."""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from igkit import IGResult
from igkit.errors import IGInputError, NonFiniteError
from igkit.progress import progress

from .attribution import explain_next_word
from .checkpoint import LanguageModel
from .contexts import Context


@dataclass
class Explanation:
    """The attribution of one context's next word, ready to print."""

    context: Context
    target_word: str
    predicted_word: str
    ig: np.ndarray
    gradient: np.ndarray
    result: IGResult            # the group's IG run; this context is example ``example``
    example: int
    seconds: float

    @property
    def summary(self) -> dict[str, Any]:
        """The core's per-example fields: scores, attribution sum, completeness, steps, method."""
        return self.result.summary(self.example)

    @property
    def probability(self) -> float:
        return self.summary["score_input"]

    @property
    def baseline_probability(self) -> float:
        return self.summary["score_baseline"]

    @property
    def total_ig(self) -> float:
        return self.summary["attribution_sum"]

    def to_dict(self) -> dict[str, Any]:
        return {"context": self.context.name, "target": self.target_word, "predicted": self.predicted_word,
                **self.summary, "seconds": round(self.seconds, 4),
                "words": [{"word": w, "oov": o, "integrated_gradient": float(i), "gradient": float(g)}
                          for w, o, i, g in zip(self.context.tokens, self.context.oov, self.ig, self.gradient)]}


def explain_contexts(lm: LanguageModel, contexts: list[Context], *, show_progress: bool = False,
                     **ig_options: Any) -> tuple[list[Explanation], dict[str, str]]:
    """Explanations in input order, and ``{context name: reason}`` for groups that failed.

    Contexts of one length go through one IG call (the core packs their path
    rows into passes of ``batch_size``), so no padding can change a prediction.
    """
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, context in enumerate(contexts):
        by_length[len(context.ids)].append(i)
    done: dict[int, Explanation] = {}
    failed: dict[str, str] = {}
    for length in progress(sorted(by_length), desc="explain", enabled=show_progress and len(by_length) > 1):
        members = [contexts[i] for i in by_length[length]]
        try:
            explanations = _explain_group(lm, members, **ig_options)
        except (IGInputError, NonFiniteError) as exc:
            failed.update({c.name: f"{type(exc).__name__}: {exc}" for c in members})
            continue
        done.update(zip(by_length[length], explanations))
    return [done[i] for i in sorted(done)], failed


def _explain_group(lm: LanguageModel, contexts: list[Context], **ig_options: Any) -> list[Explanation]:
    ids = torch.tensor([c.ids for c in contexts], dtype=torch.long)
    start = time.perf_counter()
    run = explain_next_word(lm.model, lm.model.embedding, ids, [c.target for c in contexts],
                            output_layer=lm.model.decoder, **ig_options)
    seconds = (time.perf_counter() - start) / len(contexts)
    words = lm.vocab.words
    return [Explanation(context=c, target_word=words[int(run.targets[e])],
                        predicted_word=words[int(run.predicted[e])], ig=run.ig[e].numpy(),
                        gradient=run.gradient[e].numpy(), result=run.result, example=e, seconds=seconds)
            for e, c in enumerate(contexts)]
