"""Class names: resolving ``--label NAME|INDEX`` and reading the model's top predictions."""
from __future__ import annotations

import difflib
from dataclasses import dataclass

import torch

from igkit import IGInputError


@dataclass(frozen=True)
class Prediction:
    """One class with its scores for one image."""

    index: int
    label: str
    probability: float
    logit: float

    def as_dict(self) -> dict:
        return {"index": self.index, "label": self.label, "probability": self.probability,
                "logit": self.logit}


def resolve_label(label: str | int, categories: list[str]) -> int:
    """The class index for a class name (case-insensitive) or index; unknown names list the closest."""
    text = str(label).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(categories):
            raise IGInputError(f"label index {index} is out of range: the model has {len(categories)} "
                               f"classes (0..{len(categories) - 1})")
        return index
    lowered = [c.lower() for c in categories]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    close = difflib.get_close_matches(text.lower(), lowered, n=5, cutoff=0.5)
    hint = (f"closest class names: {', '.join(repr(categories[lowered.index(c)]) for c in close)}"
            if close else "no class name is close; `igkit vision labels` lists them all")
    raise IGInputError(f"no class named {text!r}; {hint}")


def read_labels_file(path: str, classes: int) -> list[str]:
    """``--labels FILE``: one class name per line (UTF-8), as many lines as the model has classes."""
    from pathlib import Path

    from igkit import read_lines

    file = Path(path)
    if not file.is_file():
        raise IGInputError(f"--labels {path}: no such file; give a text file with one class name per line")
    names = [line.strip() for _, line in read_lines(file)]
    while names and not names[-1]:
        names.pop()
    if len(names) != classes:
        raise IGInputError(f"--labels {path} has {len(names)} class names but the model has {classes} "
                           f"classes; give one name per line, in the order of the model's outputs")
    if not all(names):
        raise IGInputError(f"--labels {path}: line {names.index('') + 1} is empty; every class needs a name")
    return names


def top_predictions(logits: torch.Tensor, categories: list[str], k: int = 5) -> list[Prediction]:
    """The ``k`` highest-scoring classes of one image's logits ``[classes]``."""
    probabilities = logits.double().softmax(0)
    top = torch.topk(probabilities, min(k, logits.numel()))
    return [Prediction(int(i), categories[int(i)], float(p), float(logits[int(i)]))
            for p, i in zip(top.values, top.indices)]


def prediction_for(logits: torch.Tensor, categories: list[str], index: int) -> Prediction:
    """The scores of class ``index`` for one image."""
    probabilities = logits.double().softmax(0)
    return Prediction(index, categories[index], float(probabilities[index]), float(logits[index]))
