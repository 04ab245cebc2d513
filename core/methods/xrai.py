"""XRAI (Kapishnikov et al. 2019): rank image regions, not pixels, by their IG attribution density.

The image is over-segmented with Felzenszwalb's method at several scales (regions
dilated by a disk so they overlap their borders); starting from nothing, the region
whose not-yet-covered pixels have the highest mean attribution is added, until the
image is covered. This follows PAIR's ``saliency`` library (``xrai.py``): IG summed
into pixels by the max over channels, scales 50…1200, σ 0.8, min size 150 on the
image resized to 224 px, dilation radius 5, regions adding < 50 new pixels dropped.
Images only (``[B, C, H, W]``); needs scikit-image, imported only when XRAI runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from igkit.attribution.baselines import Baselines
from igkit.attribution.integrated import integrated_gradients
from igkit.attribution.targets import Target
from igkit.errors import IGInputError

SCALES = (50, 100, 150, 250, 500, 1200)


@dataclass
class XRAIResult:
    """Per-pixel region scores and ranks, ``[B, 1, H, W]``, and the IG they were built from."""

    scores: torch.Tensor       # the attribution density of the region a pixel joined with
    ranks: torch.Tensor        # 1 = in the first region added; uncovered pixels rank last
    attributions: torch.Tensor  # IG, [B, C, H, W]


def xrai(forward: Callable[..., torch.Tensor], inputs: torch.Tensor, baselines: Baselines = None, *,
         target: Target = None, attributions: torch.Tensor | None = None, scales: tuple[int, ...] = SCALES,
         sigma: float = 0.8, min_size: int = 150, resize: int | None = 224, dilation: int = 5,
         min_pixel_diff: int = 50, **ig_options) -> XRAIResult:
    """XRAI regions of ``[B, C, H, W]`` images ranked by IG density (IG from ``baselines``,
    default zeros, with ``ig_options``; or pass precomputed ``attributions``)."""
    _skimage()
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
        raise IGInputError("xrai needs images [B, C, H, W] (one tensor)")
    if attributions is None:
        attributions = integrated_gradients(forward, inputs, baselines, target=target,
                                            **ig_options).attributions
    if attributions.shape != inputs.shape:
        raise IGInputError(f"xrai attributions must be shaped like the images {tuple(inputs.shape)}, "
                           f"got {tuple(attributions.shape)}")
    pixel_attr = attributions.detach().amax(dim=1)                         # [B, H, W]
    scores, ranks = [], []
    for image, attr in zip(inputs.detach(), pixel_attr):
        masks = segments(image, scales, sigma, min_size, resize, dilation)
        s, r = _rank_regions(attr.reshape(-1).double().cpu(), masks.reshape(masks.shape[0], -1),
                             min_pixel_diff)
        scores.append(s.reshape(attr.shape))
        ranks.append(r.reshape(attr.shape))
    return XRAIResult(scores=torch.stack(scores).unsqueeze(1).to(inputs.device, inputs.dtype),
                      ranks=torch.stack(ranks).unsqueeze(1).to(inputs.device),
                      attributions=attributions)


def _skimage():
    try:
        from skimage import segmentation, transform
    except ImportError as exc:
        raise IGInputError("xrai needs scikit-image: pip install scikit-image") from exc
    return segmentation, transform


def segments(image: torch.Tensor, scales: tuple[int, ...] = SCALES, sigma: float = 0.8,
             min_size: int = 150, resize: int | None = 224, dilation: int = 5) -> torch.Tensor:
    """XRAI's candidate regions of one ``[C, H, W]`` image: bool masks ``[M, H, W]`` (all scales)."""
    seg_mod, transform = _skimage()
    H, W = image.shape[-2:]
    im = image.permute(1, 2, 0).cpu().double().numpy()
    span = im.max() - im.min()
    im = 2 * (im - im.min()) / (span if span > 0 else 1) - 1             # to [-1, 1]
    if resize:
        im = transform.resize(im, (resize, resize), order=3, mode="constant", preserve_range=True,
                              anti_aliasing=True)
    channel_axis = -1 if im.shape[-1] > 1 else None
    im = im if channel_axis is not None else im[..., 0]
    masks = []
    for scale in scales:
        seg = seg_mod.felzenszwalb(im, scale=scale, sigma=sigma, min_size=min_size,
                                   channel_axis=channel_axis)
        if resize:
            seg = transform.resize(seg, (H, W), order=0, preserve_range=True, mode="constant",
                                   anti_aliasing=False).astype(int)
        seg_t = torch.from_numpy(np.ascontiguousarray(seg)).long()
        labels = torch.arange(int(seg_t.min()), int(seg_t.max()) + 1)
        masks.append(seg_t.unsqueeze(0) == labels.reshape(-1, 1, 1))
    stacked = torch.cat(masks)
    if dilation:
        r = torch.arange(-dilation, dilation + 1)
        disk = ((r[:, None] ** 2 + r[None] ** 2) <= dilation ** 2).float()[None, None]
        stacked = F.conv2d(stacked.float().unsqueeze(1), disk, padding=dilation)[:, 0] > 0.5
    return stacked[stacked.flatten(1).any(1)]


def _rank_regions(attr: torch.Tensor, masks: torch.Tensor, min_pixel_diff: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy XRAI: add the region with the highest mean attribution over its new pixels."""
    P = attr.numel()
    masks_f = masks.double()
    covered = torch.zeros(P, dtype=torch.bool)
    scores = torch.full((P,), float("-inf"), dtype=torch.float64)
    ranks = torch.zeros(P, dtype=torch.long)
    alive = torch.ones(masks.shape[0], dtype=torch.bool)
    rank = 0
    while True:
        free = (~covered).double()
        new_pixels = masks_f @ free
        alive &= new_pixels >= min_pixel_diff
        if not bool(alive.any()):
            break
        gain = (masks_f @ (attr * free)) / new_pixels.clamp_min(1)
        best = int(torch.where(alive, gain, float("-inf")).argmax())
        added = masks[best] & ~covered
        rank += 1
        scores[added] = gain[best]
        ranks[added] = rank
        covered |= masks[best]
        alive[best] = False
    if not bool(covered.all()):
        scores[~covered] = attr[~covered].mean()
        ranks[~covered] = rank + 1
    return scores, ranks


def xrai_method(forward: Callable[..., torch.Tensor], inputs: torch.Tensor, baselines: Baselines = None,
                *, target: Target = None, **options) -> torch.Tensor:
    """XRAI: image regions ranked by IG density, a [B, 1, H, W] map ([B, C, H, W]; needs scikit-image)."""
    return xrai(forward, inputs, baselines, target=target, **options).scores
