"""The value columns of an LSTM explanation record (``explanation.json``): which there are, their
headers, their scale and sign, and how a word is labelled.

Both the tables and pages (:mod:`igkit.plugins.text.render`) and the pictures
(:mod:`igkit.plugins.text.figures`) read a record through these, so they label it the same way.
"""
from __future__ import annotations

from typing import Any

#: marks a word read as ``<unk>`` (not in the model's vocabulary)
OOV_MARK = "*"

Record = dict[str, Any]


def scale_factor(record: Record) -> float:
    """What the tables multiply each value by: 1e3 with ``--scale`` (tiny predictions), else 1."""
    return 1e3 if record.get("scale") else 1.0


def method_columns(record: Record) -> list[tuple[str, str]]:
    """(key in a word's record, header) of every value column: IG, gradient, then ``--methods``."""
    suffix = " (*1e-3)" if record.get("scale") else ""
    return [("integrated_gradient", f"Integrated gradients{suffix}"), ("gradient", f"Gradient x embedding{suffix}"),
            *((m, m + suffix) for m in record.get("methods", ()))]


def is_magnitude(record: Record, key: str) -> bool:
    """Whether a column is an unsigned gradient norm (``method_reductions`` "norm")."""
    return record.get("method_reductions", {}).get(key) == "norm"


def word_label(word: dict[str, Any]) -> str:
    """The word as the tables show it: marked with :data:`OOV_MARK` when it was read as ``<unk>``."""
    return word["word"] + (OOV_MARK if word["oov"] else "")
