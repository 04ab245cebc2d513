"""Blur IG (Xu et al. 2020): integrate gradients along the path from a blurred image to the image.

The baseline is the image itself blurred with a Gaussian of ``max_sigma`` pixels,
so no "black image" meaning is imposed. The path x(σ), σ from ``max_sigma`` down to
0, is followed through ``steps`` segments of equal Δσ; on each chord the gradient
at its midpoint times the chord's step is the segment's share (midpoint rule).
The chords telescope, so completeness is judged against F(x) − F(blur(x)) exactly
as IG's is, and for a linear model the answer w·(x − blur_σmax(x)) is exact.
Images only: inputs ``[B, C, H, W]``; the blur matches
``scipy.ndimage.gaussian_filter(mode="reflect", truncate=4)`` over H and W (PAIR's
code pads with zeros, ``mode="constant"``, which darkens the blurred borders).
"""
from __future__ import annotations

from typing import Callable

import torch

from igkit.attribution.baselines import Baselines
from igkit.attribution.path import default_batch_size
from igkit.attribution.result import IGResult
from igkit.attribution.targets import Target, per_example_targets
from igkit.errors import IGInputError
from igkit.methods.backprop import at_points

TRUNCATE = 4.0
MODES = ("reflect", "constant")


def gaussian_blur(images: torch.Tensor, sigma: float, mode: str = "reflect") -> torch.Tensor:
    """``images [..., H, W]`` blurred over H and W (any σ, even > the image); borders reflect,
    or are zero with ``mode="constant"`` (as PAIR's code does, darkening them)."""
    if mode not in MODES:
        raise IGInputError(f"blur mode must be one of {', '.join(MODES)}, got {mode!r}")
    if sigma <= 0:
        return images.clone()
    H, W = images.shape[-2:]
    rows = _blur_matrix(H, sigma, images, mode)
    cols = _blur_matrix(W, sigma, images, mode)
    return rows @ images @ cols.T


def _blur_matrix(n: int, sigma: float, like: torch.Tensor, mode: str) -> torch.Tensor:
    """The n×n matrix of a 1-D Gaussian filter; out-of-range taps reflect (d c b a | a b c d) or drop."""
    radius = int(TRUNCATE * sigma + 0.5)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    src = torch.arange(n).unsqueeze(1) + taps.long().unsqueeze(0)            # [n, taps]
    weights = kernel.expand(n, -1).contiguous()
    if mode == "constant":
        weights = weights * ((src >= 0) & (src < n))
    src = src % (2 * n)
    src = torch.where(src >= n, 2 * n - 1 - src, src)
    matrix = torch.zeros(n, n, dtype=torch.float64)
    matrix.scatter_add_(1, src, weights)
    return matrix.to(dtype=like.dtype, device=like.device)


def blur_ig(forward: Callable[..., torch.Tensor], inputs: torch.Tensor, *, target: Target = None,
            max_sigma: float = 50.0, steps: int = 100, mode: str = "reflect",
            tolerance: float | None = None, max_steps: int = 1600, forward_args: tuple = (),
            batch_size: int | None = None) -> IGResult:
    """Blur IG of ``[B, C, H, W]`` images, with completeness against F(x) − F(blur_max_sigma(x)).

    ``max_sigma`` is in pixels (50 suits 224-px images, as in the paper's code); ``mode``
    is the blur's border rule (see :func:`gaussian_blur`). With
    ``tolerance`` the step count doubles from ``steps`` until every example's relative
    completeness error is at most ``tolerance`` or ``max_steps`` is reached.
    ``alphas`` in the result are t = 1 − σ/max_sigma of the segment midpoints.
    """
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
        raise IGInputError("blur_ig needs images [B, C, H, W] (one tensor)")
    if not max_sigma > 0:
        raise IGInputError(f"max_sigma must be > 0 pixels, got {max_sigma!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise IGInputError(f"steps must be a whole number ≥ 1, got {steps!r}")
    x = inputs.detach()
    result = _blur_ig_fixed(forward, x, target, max_sigma, steps, mode, forward_args, batch_size)
    while tolerance is not None and bool((result.completeness_error > tolerance).any()) \
            and 2 * result.steps <= max_steps:
        result = _blur_ig_fixed(forward, x, target, max_sigma, 2 * result.steps, mode,
                                forward_args, batch_size)
    result.meta["tolerance"] = tolerance
    return result


def _blur_ig_fixed(forward, x: torch.Tensor, target, max_sigma: float, steps: int, mode: str,
                   forward_args: tuple, batch_size: int | None) -> IGResult:
    B, dev = x.shape[0], x.device
    targets = per_example_targets(target, B)
    sigmas = [max_sigma * (1 - j / steps) for j in range(steps + 1)]     # max_sigma → 0
    per_pass = max(1, (batch_size or default_batch_size((x,))) // B)     # segments per pass
    attr = torch.zeros_like(x)
    path = []
    for j0 in range(0, steps, per_pass):
        nodes = torch.stack([gaussian_blur(x, s, mode) for s in sigmas[j0:j0 + per_pass + 1]])
        n = nodes.shape[0] - 1
        mids = ((nodes[1:] + nodes[:-1]) / 2).reshape(-1, *x.shape[1:])
        scores, (grads,) = at_points(forward, (mids,), torch.arange(B, device=dev).repeat(n), targets,
                                     forward_args, B, batch_size=batch_size)
        attr += (grads.reshape(n, *x.shape) * (nodes[1:] - nodes[:-1])).sum(0)
        path.append(scores.reshape(n, B))
    ends, _ = at_points(forward, (torch.cat([x, gaussian_blur(x, max_sigma, mode)]),),
                        torch.arange(B, device=dev).repeat(2), targets, forward_args, B, grad=False,
                        batch_size=batch_size)
    t_mid = (torch.arange(steps, dtype=torch.float64) + 0.5) / steps
    path = torch.cat(path)
    return IGResult(
        attributions=attr,
        score_input=ends[:B],
        score_baseline=ends[B:],
        alphas=[t_mid.clone() for _ in range(B)],
        path_scores=[path[:, e] for e in range(B)],
        steps=steps,
        method="blur_ig",
        meta={"max_sigma": max_sigma, "gradient_evaluations": steps * B},
    )


def blur_ig_method(forward: Callable[..., torch.Tensor], inputs: torch.Tensor, baselines: Baselines = None,
                   *, target: Target = None, **options) -> torch.Tensor:
    """Blur IG: IG from a Gaussian-blurred image to the image ([B, C, H, W]); options max_sigma=, steps=."""
    if baselines is not None:
        raise IGInputError("blur_ig's baseline is the blurred image itself; do not pass baselines")
    return blur_ig(forward, inputs, target=target, **options).attributions
