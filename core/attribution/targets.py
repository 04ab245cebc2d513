"""Turning a model's output into one score per path point, with errors a user can act on."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from igkit.errors import IGInputError

Target = int | Sequence[int] | torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None


def per_example_targets(target: Target, batch: int) -> torch.Tensor | Callable | None:
    """Normalise ``target`` to a LongTensor of one class per example (or keep a callable/None)."""
    if target is None or callable(target):
        return target
    if isinstance(target, bool):
        raise IGInputError(f"target must be a class index, got {target!r}")
    if isinstance(target, int):
        return torch.full((batch,), target, dtype=torch.long)
    t = torch.as_tensor(target)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise IGInputError(f"target must hold whole class indices, got dtype {t.dtype}")
    t = t.reshape(-1).long()
    if t.numel() == 1:
        return t.expand(batch).clone()
    if t.numel() != batch:
        raise IGInputError(f"got {t.numel()} targets for {batch} examples; give one int for all "
                           f"examples or exactly one per example")
    return t


def select_scores(output: Any, targets: torch.Tensor | Callable | None,
                  example_index: torch.Tensor) -> torch.Tensor:
    """Pick one score per row of ``output``; rows belong to examples ``example_index``."""
    rows = example_index.numel()
    if not isinstance(output, torch.Tensor):
        raise IGInputError(f"forward must return a tensor of scores, got {type(output).__name__}")
    if callable(targets):
        scores = targets(output)
        if not isinstance(scores, torch.Tensor) or scores.shape != (rows,):
            shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
            raise IGInputError(f"the target callable must return one score per row, shape ({rows},); "
                               f"got {shape}")
        return scores
    if output.dim() == 0 or output.shape[0] != rows:
        raise IGInputError(f"forward returned output of shape {tuple(output.shape)} for {rows} inputs; "
                           f"it must return one score per example ([batch]) or per class "
                           f"([batch, classes])")
    if output.dim() == 2 and output.shape[1] == 1 and targets is None:
        return output[:, 0]
    if output.dim() == 1:
        if targets is not None and bool((targets != 0).any()):
            raise IGInputError("forward returns a single score per example, so target must be "
                               "None or 0")
        return output
    if output.dim() != 2:
        raise IGInputError(f"forward returned output of shape {tuple(output.shape)}; it must return "
                           f"one score per example ([batch]) or per class ([batch, classes])")
    classes = output.shape[1]
    if targets is None:
        raise IGInputError(f"the model returns {classes} scores per example; pass target= to pick "
                           f"one (a class index, one per example, or a callable on the output)")
    bad = (targets < 0) | (targets >= classes)
    if bool(bad.any()):
        raise IGInputError(f"target {int(targets[bad][0])} is out of range for a model with "
                           f"{classes} classes (valid: 0..{classes - 1})")
    # targets and rows follow the output's device (a target given on the CPU for a model on a GPU)
    picked = targets.to(output.device)[example_index.to(output.device)]
    return output.gather(1, picked.unsqueeze(1)).squeeze(1)
