"""Reducing attributions over feature axes: colour channels, embedding dimensions."""
from __future__ import annotations

from typing import Sequence

import torch

from igkit.errors import IGInputError

REDUCTIONS = ("sum", "sum_abs", "l2", "mean_abs")


def aggregate(attributions: torch.Tensor, dims: int | Sequence[int], how: str = "sum") -> torch.Tensor:
    """Reduce over ``dims``: ``sum`` (keeps completeness: Σ over embedding dimensions),
    ``sum_abs`` (pixel importance, Σ over RGB of |attribution|, Eq. 1 of the paper),
    ``l2`` or ``mean_abs``."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if how == "sum":
        return attributions.sum(dim=dims)
    if how == "sum_abs":
        return attributions.abs().sum(dim=dims)
    if how == "l2":
        return attributions.pow(2).sum(dim=dims).sqrt()
    if how == "mean_abs":
        return attributions.abs().mean(dim=dims)
    raise IGInputError(f"unknown reduction {how!r}; choose one of {', '.join(REDUCTIONS)}")
