"""Attribution pictures as RGB arrays: the paper's rendering (the image's intensities scaled by
importance) and overlays (clipped, by polarity, on a grey copy, with outlines of the top regions)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from igkit import IGInputError
from igkit.outputs import colours

from .choices import POLARITIES, UNDERLAYS

#: igkit's one convention (igkit.outputs.colours): red raises the target score, blue lowers it
RAISES = np.array([int(colours.RAISES[i:i + 2], 16) / 255 for i in (1, 3, 5)])
LOWERS = np.array([int(colours.LOWERS[i:i + 2], 16) / 255 for i in (1, 3, 5)])
OUTLINE = np.array([1.0, 1.0, 0.0])
#: how an overlay's colours and brightness read, for the legend beside it
OVERLAY_SCALE = ("colour strength: this image's own scale, |attribution| (Σ over channels) between the "
                 "--clip percentiles")


@dataclass(frozen=True)
class RenderSettings:
    """How importance becomes brightness: percentiles clipped below/above, polarity, underlay,
    and the share of pixels (in %) whose regions get outlined (0: no outlines)."""

    clip_low: float = 0.0
    clip_high: float = 99.5
    polarity: str = "both"
    underlay: str = "grey"
    outline_top: float = 10.0

    def __post_init__(self) -> None:
        if not 0 <= self.clip_low < self.clip_high <= 100:
            raise IGInputError(f"--clip needs 0 ≤ LOW < HIGH ≤ 100 (percentiles), got "
                               f"{self.clip_low} {self.clip_high}")
        if self.polarity not in POLARITIES:
            raise IGInputError(f"--polarity must be one of {', '.join(POLARITIES)}, got {self.polarity!r}")
        if self.underlay not in UNDERLAYS:
            raise IGInputError(f"--underlay must be one of {', '.join(UNDERLAYS)}, got {self.underlay!r}")
        if not 0 <= self.outline_top < 100:
            raise IGInputError(f"--outline-top is a percentage of pixels in [0, 100), got {self.outline_top}")

    def describe(self) -> dict:
        return {"clip_percentiles": [self.clip_low, self.clip_high], "polarity": self.polarity,
                "underlay": self.underlay, "outline_top_percent": self.outline_top}


def as_image(pixels: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` pixels in [0, 1] as an ``[H, W, 3]`` float array."""
    return pixels.detach().cpu().permute(1, 2, 0).numpy().astype(np.float64)


def scaled_importance(values: np.ndarray, clip_low: float, clip_high: float) -> np.ndarray:
    """Importance mapped to [0, 1] between two percentiles (0 everywhere for a flat map)."""
    values = np.asarray(values, dtype=np.float64)
    low, high = np.percentile(values, [clip_low, clip_high])
    if not high > low:
        return np.zeros_like(values) if high <= 0 else (values >= high).astype(np.float64)
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def paper_rendering(image: np.ndarray, importance: np.ndarray, settings: RenderSettings) -> np.ndarray:
    """The paper's picture: each pixel's intensity scaled in proportion to its importance."""
    weight = scaled_importance(importance, settings.clip_low, settings.clip_high)
    return to_uint8(image * weight[..., None])


def overlay(image: np.ndarray, attributions: torch.Tensor, settings: RenderSettings,
            peak: float | None = None) -> np.ndarray:
    """Red where attribution (Σ over channels) raises the target score, blue where it lowers it
    (igkit.outputs.colours), on a chosen underlay, with the most important regions outlined. ``peak``: full
    colour at this |value| (a run's shared scale, ``--shared-scale``) instead of this image's own
    ``--clip`` percentiles."""
    signed = attributions.detach().cpu().sum(0).numpy().astype(np.float64)
    shown = {"positive": np.clip(signed, 0, None), "negative": np.clip(-signed, 0, None),
             "both": np.abs(signed)}[settings.polarity]
    strength = (np.clip(shown / peak, 0.0, 1.0) if peak
                else scaled_importance(shown, settings.clip_low, settings.clip_high))
    colour = np.where((signed >= 0)[..., None], RAISES, LOWERS)
    under = underlay(image, settings.underlay)
    picture = under * (1 - strength[..., None]) + colour * strength[..., None]
    if settings.outline_top > 0:
        edges = region_outlines(shown, settings.outline_top)
        picture[edges] = OUTLINE
    return to_uint8(picture)


def overlay_peak(attributions: np.ndarray, settings: RenderSettings) -> float:
    """The |Σ over channels| at this image's upper ``--clip`` percentile: its part of a shared scale."""
    signed = np.asarray(attributions, dtype=np.float64).sum(0)
    return float(np.percentile(np.abs(signed), settings.clip_high))


def underlay(image: np.ndarray, kind: str) -> np.ndarray:
    """The picture under the colours: a dimmed grey copy, the dimmed colour image, or black."""
    if kind == "black":
        return np.zeros_like(image)
    if kind == "grey":
        grey = image @ np.array([0.299, 0.587, 0.114])
        image = np.repeat(grey[..., None], 3, axis=2)
    return 0.5 * image


def region_outlines(importance: np.ndarray, top_percent: float) -> np.ndarray:
    """Boundary pixels of the regions covering the top ``top_percent`` % of smoothed importance."""
    height, width = importance.shape
    k = max(3, (min(height, width) // 16) | 1)
    smooth = torch.nn.functional.avg_pool2d(torch.from_numpy(importance)[None, None], k, stride=1,
                                            padding=k // 2, count_include_pad=False)[0, 0].numpy()
    threshold = np.percentile(smooth, 100 - top_percent)
    inside = smooth > threshold if threshold > smooth.min() else smooth > smooth.min()
    padded = np.pad(inside, 1, mode="edge")
    interior = (padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    return inside & ~interior


def to_uint8(picture: np.ndarray) -> np.ndarray:
    return (np.clip(picture, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
