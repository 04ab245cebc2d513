"""What the text domain returns per context of the LSTM: the runner's attribution plus the words.

Its :meth:`TextExplanation.to_dict` is the record an item folder keeps as ``explanation.json``;
the tables and pages (:mod:`igkit.plugins.text.render`) are drawn from that record.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from igkit.domain import Attribution, Explanation

from .contexts import Context
from .methods import per_word, word_reduction

if TYPE_CHECKING:
    import numpy as np


@dataclass
class TextExplanation(Explanation):
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
        dimensions, or the gradient's L2 norm for the gradient methods (``GRADIENT_METHODS``)."""
        return {name: per_word(name, maps[0][0]) for name, maps in self.attribution.methods.items()}
