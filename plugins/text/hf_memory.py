"""How many path points of a causal LM fit one forward/backward pass within ``--max-memory``.

A path point's peak is more than what autograd saves in the forward: the backward pass allocates
the gradients of one transformer block's activations while that block's saved tensors are still
alive. So the estimate per point is

* without checkpointing: everything the forward saves + one block's saved tensors (its backward);
* with c of the n transformer blocks checkpointed (``torch.utils.checkpoint``, recomputed in the
  backward): everything the forward saves less c blocks' saved tensors (each keeps its input
  only) + twice one block's saved tensors (its recomputed activations and their gradients).

Saved bytes are measured on the model itself (the tensors autograd keeps, weights excluded) at
up to three short context lengths and extrapolated to the item's length with a quadratic in the
length (eager attention keeps heads × T² probabilities; the rest grows with T), so a 2,048-token
context costs three forwards of ≤ 128 tokens to size, not one of 2,048. The pass keeps every block
(fastest) when at least one point fits the budget that way, else recomputes as few blocks as make one
point fit: a recomputed block costs its forward once more (about a third of its forward + backward),
and on a CPU a point costs the same in a pass of one or of many, so fewer recomputed blocks beat
more points per pass (GPT-2 small at 2,048 tokens within the default 2 GiB: 2 of its 12 blocks
recomputed, one point per pass, where all 12 were recomputed for four points per pass).
"""
from __future__ import annotations

import ctypes
import functools
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch.utils.checkpoint import checkpoint as recomputed_in_backward

from igkit.errors import IGInputError

#: activation memory per pass of path points unless ``--max-memory`` says otherwise
DEFAULT_MAX_MEMORY = "2GiB"
#: context lengths the saved bytes are measured at before extrapolating to a longer context
PROBE_LENGTHS = (32, 64, 128)
#: glibc's mallopt parameter for the size from which allocations get their own mapping
_M_MMAP_THRESHOLD = -3
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class PassPlan:
    """Path points per pass, whether the blocks are checkpointed, and the estimate behind it."""

    points: int
    checkpointed_blocks: int
    bytes_per_point: int
    budget: int

    @property
    def checkpoint(self) -> bool:
        """Whether any block is recomputed in the backward pass."""
        return self.checkpointed_blocks > 0


def parse_memory(text: str) -> int:
    """Bytes in "2GiB", "512MiB", "1.5G", "800M" (powers of 1024)."""
    match = _SIZE.match(str(text))
    if not match:
        raise IGInputError(f"--max-memory {text!r} is not a size; write e.g. 2GiB or 512MiB")
    value = float(match.group(1)) * 1024 ** " KMGT".index((match.group(2) or " ").upper())
    if value < 1024 ** 2:
        raise IGInputError(f"--max-memory {text!r} is below 1 MiB; give the memory for one pass of path points")
    return int(value)


def transformer_blocks(model: Any) -> list[torch.nn.Module]:
    """The model's repeated blocks: the ModuleList of ``config.num_hidden_layers`` modules of one
    class holding the most parameters (GPT-2's ``transformer.h``, Llama's ``model.layers``)."""
    layers = getattr(model.config, "num_hidden_layers", None)
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == layers
             and len(m) > 0 and len({type(block) for block in m}) == 1]
    if not lists:
        return []
    return list(max(lists, key=lambda m: sum(p.numel() for p in m.parameters())))


@contextmanager
def checkpointed(blocks: list[torch.nn.Module]) -> Iterator[None]:
    """Inside the ``with``, each block keeps only its inputs and recomputes its activations
    in the backward pass (non-reentrant checkpointing: keyword arguments pass through)."""
    previous = [block.__dict__.get("forward") for block in blocks]
    try:
        for block in blocks:
            block.forward = functools.partial(recomputed_in_backward, block.forward, use_reentrant=False)
        yield
    finally:
        for block, forward in zip(blocks, previous):
            if forward is None:
                del block.forward
            else:
                block.forward = forward


def saved_bytes(forward: Callable[..., torch.Tensor], parameters: set[int], embeds: torch.Tensor,
                args: tuple[torch.Tensor, ...]) -> int:
    """Bytes of the tensors autograd saves for the backward of one forward (weights excluded)."""
    seen: set[int] = set()
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        storage = tensor.untyped_storage()
        pointer = storage.data_ptr()
        if pointer not in seen and pointer not in parameters:
            seen.add(pointer)
            total += storage.nbytes()
        return tensor

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward(embeds.requires_grad_(True), *args)
    del out
    return total


def extrapolate(lengths: list[int], values: list[int], length: int) -> float:
    """``values`` measured at ``lengths``, fitted by c + b·T + a·T² (exact through three points),
    at ``length``; never below the largest measurement."""
    if length in lengths:
        return float(values[lengths.index(length)])
    t = torch.tensor(lengths, dtype=torch.float64)
    powers = torch.stack([t ** k for k in range(len(lengths))], dim=1)
    coefficients = torch.linalg.solve(powers, torch.tensor(values, dtype=torch.float64))
    estimate = sum(float(c) * length ** k for k, c in enumerate(coefficients))
    return max(estimate, float(max(values)))


def return_freed_tensors_to_the_system(threshold: int = 128 * 1024) -> None:
    """Make glibc give every freed block of ``threshold`` bytes or more back to the system at once.

    By default glibc raises its mmap threshold to the largest block freed so far (up to 32 MiB), so
    after the first pass a transformer's activations come from the heap and stay there once freed:
    on GPT-2 small at 512 tokens a checkpointed pass's peak RSS grew 0.32 GiB for 0.08 GiB of live
    tensors. Fixing the threshold (the default's value, no longer adjusted) keeps the process's
    peak near its live tensors, which is what ``--max-memory`` budgets. A no-op off glibc."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, int(threshold))
    except (OSError, AttributeError):  # musl or another C library: nothing to set
        return


def plan_passes(forward_for: Callable[[int], Callable[..., torch.Tensor]], model: Any, length: int,
                args: tuple[torch.Tensor, ...], max_memory: str | None, cache: dict) -> PassPlan:
    """Path points per pass of a ``length``-token context within ``max_memory`` (see the module's
    docstring); ``forward_for(c)`` builds the forward with its first c blocks checkpointed, ``args``
    are its arguments after the embeddings (they do not depend on the length). An error when one
    point does not fit even with every block recomputed."""
    budget = parse_memory(max_memory or DEFAULT_MAX_MEMORY)
    return_freed_tensors_to_the_system()
    plain, outside, per_block = point_bytes(forward_for, model, length, args, cache)
    width = model.get_input_embeddings().weight.shape[1]
    inputs = 3 * length * width * 4  # the scaled inputs, their gradient and its weighted sum
    whole = plain + per_block + inputs
    if whole <= budget:
        return PassPlan(int(budget // whole), 0, int(whole), budget)
    blocks = len(transformer_blocks(model))
    for recomputed in range(1, blocks + 1):
        lean = max(plain - recomputed * per_block, outside) + 2 * per_block + inputs
        if lean <= budget:
            return PassPlan(int(budget // lean), recomputed, int(lean), budget)
    least, how = (lean, "even with its transformer blocks recomputed in the backward pass") if blocks else \
        (whole, "(igkit found no transformer blocks to recompute)")
    raise IGInputError(f"one path point of this {length}-token context needs about {least / 2 ** 20:.0f} MiB "
                       f"{how}, more than --max-memory {max_memory or DEFAULT_MAX_MEMORY}; raise --max-memory, "
                       f"or explain fewer tokens with --last-tokens N")


def point_bytes(forward_for: Callable[[int], Callable[..., torch.Tensor]], model: Any, length: int,
                args: tuple[torch.Tensor, ...], cache: dict) -> tuple[float, float, float]:
    """Saved bytes of one path point: all of them, those outside the blocks (all checkpointed), and
    one block's; measured at short lengths, extrapolated, cached per shape on ``cache``."""
    key = (length, *(tuple(a.shape) for a in args), *(tuple(a.flatten().tolist()) for a in args[2:]))
    if key not in cache:
        parameters = {p.data_ptr() for p in model.parameters()}
        lengths = [length] if length <= PROBE_LENGTHS[-1] else list(PROBE_LENGTHS)
        width = model.get_input_embeddings().weight.shape[1]
        device = model.get_input_embeddings().weight.device
        blocks = len(transformer_blocks(model))
        measured = {count: [saved_bytes(forward_for(count), parameters,
                                        torch.zeros(1, n, width, device=device), args) for n in lengths]
                    for count in (0, blocks)}
        plain = extrapolate(lengths, measured[0], length)
        outside = extrapolate(lengths, measured[blocks], length)
        # no blocks found: nothing is checkpointed, and the backward is taken to double the peak
        cache[key] = (plain, outside, max(plain - outside, 0.0) / blocks if blocks else plain)
    return cache[key]
