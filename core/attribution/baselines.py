"""Normalising inputs and baselines into one shape the path engine understands.

Every baseline ends up as a tensor ``[K, B, *features]``: K baselines per example
(K > 1 when several are averaged), B examples.
"""
from __future__ import annotations

from numbers import Number
from typing import Any, Callable

import torch

from igkit.errors import IGInputError

Baselines = Any  # None | number | tensor | stack | callable | tuple of those


def as_input_tuple(inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[tuple[torch.Tensor, ...], bool]:
    """Inputs as a tuple of float tensors sharing a batch size, and whether a tuple was given."""
    is_tuple = isinstance(inputs, (tuple, list))
    xs = tuple(inputs) if is_tuple else (inputs,)
    if not xs:
        raise IGInputError("inputs is empty; give a tensor or a tuple of tensors with a batch dimension")
    for i, x in enumerate(xs):
        if not isinstance(x, torch.Tensor):
            raise IGInputError(f"input {i} is a {type(x).__name__}, not a torch.Tensor")
        if x.dim() == 0:
            raise IGInputError(f"input {i} is a scalar; inputs need a leading batch dimension")
        if not x.dtype.is_floating_point:
            raise IGInputError(f"input {i} has dtype {x.dtype}; integrated gradients scales inputs, so "
                               f"they must be floating point (for token ids, attribute the embedding "
                               f"output: see igkit.attribution.layers)")
    batch = xs[0].shape[0]
    for i, x in enumerate(xs[1:], start=1):
        if x.shape[0] != batch:
            raise IGInputError(f"input {i} has batch size {x.shape[0]} but input 0 has {batch}; all "
                               f"inputs must share the leading batch dimension")
    return tuple(x.detach() for x in xs), is_tuple


def resolve_baselines(baselines: Baselines, xs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Baselines as ``[K, B, *features]`` tensors, one per input, with one shared K."""
    if callable(baselines) and not isinstance(baselines, torch.Tensor):
        drawn = _call_baselines(baselines, xs)
        return resolve_baselines(drawn, xs)
    if isinstance(baselines, (tuple, list)):
        if len(baselines) != len(xs):
            raise IGInputError(f"got {len(baselines)} baselines for {len(xs)} inputs; give one per "
                               f"input (or a single value for all)")
        per_input = [_one_baseline(b, x, i) for i, (b, x) in enumerate(zip(baselines, xs))]
    else:
        per_input = [_one_baseline(baselines, x, i) for i, x in enumerate(xs)]
    counts = {b.shape[0] for b in per_input}
    if len(counts - {1}) > 1:
        raise IGInputError(f"inputs were given different numbers of baselines {sorted(counts)}; "
                           f"every input needs the same number K (or 1)")
    k = max(counts)
    return tuple(b.expand(k, *b.shape[1:]) for b in per_input)


def _call_baselines(draw: Callable, xs: tuple[torch.Tensor, ...]) -> Any:
    try:
        return draw(xs if len(xs) > 1 else xs[0])
    except IGInputError:
        raise
    except Exception as exc:  # the user's callable failed: say so instead of a deep traceback
        raise IGInputError(f"the baselines callable raised {type(exc).__name__}: {exc}") from exc


def _one_baseline(b: Any, x: torch.Tensor, index: int) -> torch.Tensor:
    """One input's baseline as ``[K, B, *features]``."""
    if b is None:
        return torch.zeros_like(x).unsqueeze(0)
    if isinstance(b, Number) and not isinstance(b, bool):
        return torch.full_like(x, float(b)).unsqueeze(0)
    if not isinstance(b, torch.Tensor):
        raise IGInputError(f"baseline for input {index} is a {type(b).__name__}; give None, a number, "
                           f"a tensor, a stack of tensors or a callable")
    b = b.detach().to(dtype=x.dtype, device=x.device)
    features = tuple(x.shape[1:])
    if b.dim() == 0:
        return torch.full_like(x, float(b)).unsqueeze(0)
    if tuple(b.shape) == tuple(x.shape):
        return b.unsqueeze(0)
    if tuple(b.shape) == features or tuple(b.shape) == (1, *features):
        return b.reshape(1, 1, *features).expand(1, x.shape[0], *features)
    if b.dim() == x.dim() + 1 and tuple(b.shape[2:]) == features and b.shape[1] in (1, x.shape[0]):
        return b.expand(b.shape[0], x.shape[0], *features)
    raise IGInputError(
        f"baseline shape {tuple(b.shape)} does not match input {index} of shape {tuple(x.shape)}; "
        f"give a tensor shaped like the input {tuple(x.shape)}, like one example {features}, or a "
        f"stack of K baselines (K, {', '.join(map(str, x.shape))})")
