"""Occlusion / leave-one-out over groups of features (patches, superpixels, atoms with their
pairs, words), many occluded copies per forward pass.

A group's score is the drop F(x) − F(x with the group set to the baseline). It is
spread *equally* over the group's features (across all inputs), so the attributions
of one group sum to its drop. Sliding windows that overlap (``stride < patch``) give
each feature the mean of its windows' shares, like Captum's ``Occlusion``.
"""
from __future__ import annotations

from typing import Callable

import torch

from igkit.attribution.baselines import Baselines, as_input_tuple, resolve_baselines
from igkit.attribution.path import default_batch_size
from igkit.attribution.targets import Target, per_example_targets
from igkit.errors import IGInputError
from igkit.methods.backprop import at_points

Attributions = torch.Tensor | tuple[torch.Tensor, ...]
Groups = torch.Tensor | tuple[torch.Tensor, ...]


def occlusion(forward: Callable[..., torch.Tensor], inputs: Attributions, baselines: Baselines = None,
              *, target: Target = None, groups: Groups | None = None,
              patch: int | tuple[int, int] | None = None, stride: int | tuple[int, int] | None = None,
              forward_args: tuple = (), batch_size: int | None = None) -> Attributions:
    """Occlusion: F(x) − F(x, group at baseline), shared by the group; needs groups= or patch=.

    ``groups``: integer group ids, one tensor per input, shaped like one example's
    input or like the batch; equal ids in different inputs form one group (an atom
    with its pairs). ``patch``/``stride`` (ints or (h, w)) instead slide windows over
    all channels of a ``[B, C, H, W]`` input. ``batch_size`` occluded copies run per pass.
    """
    xs, is_tuple = as_input_tuple(inputs)
    bs = resolve_baselines(baselines, xs)
    if bs[0].shape[0] != 1:
        raise IGInputError("occlusion takes a single baseline, not a stack")
    if (groups is None) == (patch is None):
        raise IGInputError("occlusion needs exactly one of groups= (integer group ids per feature) "
                           "or patch= (a sliding window for [B, C, H, W] images)")
    units = _Groups(groups, xs) if groups is not None else _Windows(patch, stride, xs)
    B = xs[0].shape[0]
    targets = per_example_targets(target, B)
    examples = torch.arange(B, device=xs[0].device)
    full, _ = at_points(forward, xs, examples, targets, forward_args, B, grad=False,
                        batch_size=batch_size)
    attr = [torch.zeros_like(x) for x in xs]
    cover = [torch.zeros_like(x) for x in xs]
    chunk = batch_size or default_batch_size(xs)
    for start in range(0, units.ex.numel(), chunk):
        ex, unit = units.ex[start:start + chunk], units.unit[start:start + chunk]
        masks = units.masks(ex, unit)
        occluded = tuple(torch.where(m, b[0, ex], x[ex]) for m, x, b in zip(masks, xs, bs))
        scores, _ = at_points(forward, occluded, ex, targets, forward_args, B, grad=False,
                              batch_size=chunk)
        share = (full[ex] - scores) / units.sizes(ex, unit)
        for a, c, m in zip(attr, cover, masks):
            a.index_add_(0, ex, m * share.to(a.dtype).reshape(-1, *([1] * (m.dim() - 1))))
            c.index_add_(0, ex, m.to(c.dtype))
    result = tuple(a / c.clamp_min(1) for a, c in zip(attr, cover))
    return result if is_tuple else result[0]


class _Groups:
    """Rows (example, group) for every group an example has; masks built chunk by chunk."""

    def __init__(self, groups: Groups, xs: tuple[torch.Tensor, ...]):
        gs = tuple(groups) if isinstance(groups, (tuple, list)) else (groups,)
        if len(gs) != len(xs):
            raise IGInputError(f"got {len(gs)} group tensors for {len(xs)} inputs; give one per input")
        per_input = [self._expand(g, x, i) for i, (g, x) in enumerate(zip(gs, xs))]
        B = xs[0].shape[0]
        flat = torch.cat([g.reshape(B, -1) for g in per_input], dim=1)
        _, inverse = torch.unique(flat, return_inverse=True)
        self.n_groups = int(inverse.max()) + 1
        offsets = torch.cumsum(torch.tensor([0] + [g[0].numel() for g in per_input]), 0).tolist()
        self.ids = tuple(inverse[:, a:b].reshape(g.shape) for a, b, g in zip(offsets, offsets[1:], per_input))
        rows = torch.arange(B, device=flat.device).unsqueeze(1) * self.n_groups + inverse
        self.counts = torch.bincount(rows.flatten(), minlength=B * self.n_groups).reshape(B, self.n_groups)
        self.ex, self.unit = (self.counts > 0).nonzero(as_tuple=True)

    @staticmethod
    def _expand(g: torch.Tensor, x: torch.Tensor, i: int) -> torch.Tensor:
        if not isinstance(g, torch.Tensor) or g.dtype.is_floating_point or g.dtype == torch.bool:
            raise IGInputError(f"groups for input {i} must be an integer tensor of group ids")
        g = g.to(x.device)
        if tuple(g.shape) == tuple(x.shape[1:]):
            g = g.unsqueeze(0)
        if g.dim() != x.dim() or g.shape[0] not in (1, x.shape[0]) or g.shape[1:] != x.shape[1:]:
            raise IGInputError(f"groups for input {i} have shape {tuple(g.shape)}; give one example's "
                               f"shape {tuple(x.shape[1:])} or the batch's {tuple(x.shape)}")
        return g.expand(x.shape)

    def masks(self, ex: torch.Tensor, unit: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(ids[ex] == unit.reshape(-1, *([1] * (ids.dim() - 1))) for ids in self.ids)

    def sizes(self, ex: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        return self.counts[ex, unit].to(torch.float64)


class _Windows:
    """Rows (example, window) for windows of ``patch`` sliding by ``stride`` over H and W."""

    def __init__(self, patch, stride, xs: tuple[torch.Tensor, ...]):
        if len(xs) != 1 or xs[0].dim() != 4:
            raise IGInputError("occlusion patch= needs one [B, C, H, W] input; use groups= otherwise")
        self.shape = xs[0].shape
        self.patch = _pair(patch, "patch")
        self.stride = _pair(stride if stride is not None else patch, "stride")
        H, W = self.shape[-2:]
        if self.patch[0] > H or self.patch[1] > W:
            raise IGInputError(f"patch {self.patch} is larger than the image ({H}, {W})")
        tops = range(0, H - self.patch[0] + 1, self.stride[0])
        lefts = range(0, W - self.patch[1] + 1, self.stride[1])
        self.corners = torch.tensor([(t, l) for t in tops for l in lefts], device=xs[0].device)
        n = self.corners.shape[0]
        self.ex = torch.arange(self.shape[0], device=xs[0].device).repeat_interleave(n)
        self.unit = torch.arange(n, device=xs[0].device).repeat(self.shape[0])

    def masks(self, ex: torch.Tensor, unit: torch.Tensor) -> tuple[torch.Tensor, ...]:
        H, W = self.shape[-2:]
        top, left = self.corners[unit, 0], self.corners[unit, 1]
        rows = torch.arange(H, device=ex.device)
        cols = torch.arange(W, device=ex.device)
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + self.patch[0])
        in_cols = (cols >= left[:, None]) & (cols < left[:, None] + self.patch[1])
        mask = in_rows[:, None, :, None] & in_cols[:, None, None, :]
        return (mask.expand(-1, self.shape[1], -1, -1),)

    def sizes(self, ex: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        size = self.shape[1] * self.patch[0] * self.patch[1]
        return torch.full((ex.numel(),), float(size), dtype=torch.float64, device=ex.device)


def _pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise IGInputError(f"{name} must be a whole number ≥ 1 or a pair (h, w) of them, got {value!r}")
    return pair
