"""Gradient methods that change or read the backward pass: guided backpropagation and Grad-CAM.

Also :func:`at_points`, which evaluates a model at arbitrary points (occluded copies,
blurred images, guided-path points) with the path engine's batching, target and
``forward_args`` rules, so every method here treats them the same way as IG does.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from igkit.attribution.baselines import Baselines, as_input_tuple
from igkit.attribution.path import PathEvaluator
from igkit.attribution.targets import Target, per_example_targets
from igkit.errors import IGInputError

Attributions = torch.Tensor | tuple[torch.Tensor, ...]


def at_points(forward: Callable[..., torch.Tensor], points: tuple[torch.Tensor, ...], ex: torch.Tensor,
              targets, forward_args: tuple = (), batch: int | None = None, *, grad: bool = True,
              batch_size: int | None = None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
    """Scores (and gradients) of ``forward`` at ``points``; row r belongs to example ``ex[r]``.

    ``targets`` are per example (from :func:`per_example_targets`); tensors in
    ``forward_args`` whose first dimension is ``batch`` (the number of examples) are
    indexed by ``ex`` so they follow their example, exactly as along an IG path.
    """
    batch = int(ex.max()) + 1 if batch is None else batch
    args = tuple(a[ex] if isinstance(a, torch.Tensor) and a.dim() > 0 and a.shape[0] == batch else a
                 for a in forward_args)
    row_targets = targets[ex] if isinstance(targets, torch.Tensor) else targets
    # the path engine at α = 1 with the point as its own "baseline" evaluates the point itself
    ev = PathEvaluator(forward, points, tuple(p.unsqueeze(0) for p in points), row_targets, args,
                       batch_size)
    rows = torch.arange(ex.numel(), device=ev.device)
    scores, grads = [], [[] for _ in points]
    for _, s, g in ev.rows(rows, torch.zeros_like(rows), torch.ones(rows.numel(), device=ev.device),
                           grad=grad):
        scores.append(s)
        for i, gi in enumerate(g or ()):
            grads[i].append(gi)
    return torch.cat(scores), (tuple(torch.cat(g) for g in grads) if grad else None)


class _GuidedReLU(torch.autograd.Function):
    """Identity forward; backward lets only positive gradients through (after the ReLU's own mask)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clone()  # a new tensor: later in-place ops on it stay legal

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.clamp_min(0)


def guided_backprop(forward: Callable[..., torch.Tensor], inputs: Attributions, baselines: Baselines = None,
                    *, target: Target = None, model: nn.Module | None = None, forward_args: tuple = (),
                    batch_size: int | None = None) -> Attributions:
    """Guided backprop: the gradient with negative signals stopped at ReLUs; needs model= (an nn.Module).

    Every ``nn.ReLU`` module inside ``model`` passes back relu(its usual input gradient),
    as in Springenberg et al. and Captum's ``GuidedBackprop``. Limit: only ``nn.ReLU``
    modules are found; ``F.relu``/``torch.relu`` calls inside ``forward`` are not
    guided (the method then silently degrades towards the plain gradient there).
    ``baselines`` are ignored.
    """
    model = model if model is not None else forward
    if not isinstance(model, nn.Module):
        raise IGInputError("guided_backprop needs model= (the nn.Module whose nn.ReLU modules are guided)")
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise IGInputError("guided_backprop found no nn.ReLU module in the model; it only guides "
                           "nn.ReLU modules (not F.relu calls)")
    xs, is_tuple = as_input_tuple(inputs)
    handles = [m.register_forward_hook(lambda _m, _i, out: _GuidedReLU.apply(out)) for m in relus]
    try:
        _, grads = at_points(forward, xs, torch.arange(xs[0].shape[0], device=xs[0].device),
                             per_example_targets(target, xs[0].shape[0]), forward_args,
                             batch_size=batch_size)
    finally:
        for h in handles:
            h.remove()
    return grads if is_tuple else grads[0]


def grad_cam(forward: Callable[..., torch.Tensor], inputs: Attributions, baselines: Baselines = None,
             *, target: Target = None, layer: nn.Module | None = None, channel_dim: int | None = None,
             upsample: bool = False, forward_args: tuple = (), batch_size: int | None = None
             ) -> torch.Tensor:
    """Grad-CAM: ReLU(Σ_c w_c A_c) at a layer, w_c = mean gradient of channel c; needs layer=.

    ``layer`` is an ``nn.Module`` run once by ``forward``. Its output A is read with
    channels on ``channel_dim``: by default dim 1 for 4-D+ outputs (conv maps
    ``[B, C, H, W]``) and the last dim for 3-D outputs (atom or token layers
    ``[B, N, C]``: CAM over atoms, weights averaged over all N positions, padding
    included). The map has A's shape with the channel dim reduced to size 1
    (``[B, 1, H, W]`` like Captum's ``LayerGradCam``; ``[B, N, 1]`` for atoms).
    ``upsample=True`` resizes a conv map to the ``[B, C, H, W]`` input's H×W
    (see :func:`upsample_cam`). ``baselines`` are ignored.
    """
    if not isinstance(layer, nn.Module):
        raise IGInputError("grad_cam needs layer= (the nn.Module whose output is mapped, e.g. the "
                           "last conv layer)")
    xs, _ = as_input_tuple(inputs)
    acts: list[torch.Tensor] = []
    grads: list[torch.Tensor] = []

    def capture(_m, _i, out):
        if not isinstance(out, torch.Tensor):
            raise IGInputError(f"grad_cam's layer must output a tensor, got {type(out).__name__}")
        acts.append(out.detach())
        if out.requires_grad:
            out.register_hook(grads.append)

    handle = layer.register_forward_hook(capture)
    try:
        at_points(forward, xs, torch.arange(xs[0].shape[0], device=xs[0].device),
                  per_example_targets(target, xs[0].shape[0]), forward_args, batch_size=batch_size)
    finally:
        handle.remove()
    if not acts or len(grads) != len(acts):
        raise IGInputError("grad_cam's layer did not run (once per pass) between the inputs and the "
                           "score; pick a module that forward calls")
    A, G = torch.cat(acts), torch.cat(grads)
    if A.dim() < 3:
        raise IGInputError(f"grad_cam needs a layer output with positions and channels (≥ 3 dims), "
                           f"got shape {tuple(A.shape)}")
    cdim = (1 if A.dim() >= 4 else -1) if channel_dim is None else channel_dim
    cdim = cdim % A.dim()
    positions = tuple(d for d in range(1, A.dim()) if d != cdim)
    weights = G.mean(dim=positions, keepdim=True)
    cam = F.relu((weights * A).sum(dim=cdim, keepdim=True))
    if upsample:
        if cam.dim() != 4 or xs[0].dim() != 4:
            raise IGInputError("grad_cam upsample=True needs a [B, C, H, W] input and a conv layer map")
        cam = upsample_cam(cam, xs[0].shape[-2:])
    return cam


def upsample_cam(cam: torch.Tensor, size: tuple[int, int] | torch.Size, mode: str = "bilinear"
                 ) -> torch.Tensor:
    """A ``[B, 1, h, w]`` Grad-CAM map resized to the image's ``size`` (H, W), to overlay it."""
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(cam, size=tuple(size), mode=mode, **kwargs)
