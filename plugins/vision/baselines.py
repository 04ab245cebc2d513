"""Counterfactual starting points in pixel space: black (the paper), a blurred copy, or uniform
noise averaged over several draws."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from igkit import IGInputError

from .choices import BASELINES


@dataclass(frozen=True)
class BaselineSpec:
    """Which baseline, and its knobs: blur width in pixels, number of noise draws, seed."""

    kind: str = "black"
    blur_sigma: float | None = None
    noise_draws: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in BASELINES:
            raise IGInputError(f"unknown baseline {self.kind!r}; choose one of {', '.join(BASELINES)}")
        if self.noise_draws < 1:
            raise IGInputError(f"--noise-draws must be at least 1, got {self.noise_draws}")
        if self.blur_sigma is not None and self.blur_sigma <= 0:
            raise IGInputError(f"--blur-sigma must be positive, got {self.blur_sigma}")

    def stack(self, pixels: torch.Tensor) -> torch.Tensor:
        """Baselines for one image ``[3, H, W]`` as a stack ``[K, 1, 3, H, W]`` (K > 1: averaged)."""
        if self.kind == "black":
            return torch.zeros_like(pixels).reshape(1, 1, *pixels.shape)
        if self.kind == "blur":
            from torchvision.transforms import functional as TF

            sigma = self.blur_sigma or max(pixels.shape[-2:]) / 28  # 8 pixels at 224
            kernel = 2 * min(int(3 * sigma), min(pixels.shape[-2:]) - 1) + 1  # reflect padding < size
            return TF.gaussian_blur(pixels, [kernel, kernel], [sigma, sigma]).reshape(1, 1, *pixels.shape)
        generator = torch.Generator().manual_seed(self.seed)
        draws = torch.rand((self.noise_draws, 1, *pixels.shape), generator=generator)
        return draws.to(pixels)

    def path_start(self, pixels: torch.Tensor) -> torch.Tensor:
        """The single baseline that path pictures (saturation, interior gradients) start from."""
        return self.stack(pixels)[0]

    def describe(self) -> dict:
        """The choice as JSON; noise path pictures use the first draw, and say so."""
        info = {"baseline": self.kind}
        if self.kind == "blur":
            info["blur_sigma"] = self.blur_sigma or "image size / 28"
        if self.kind == "noise":
            info.update(noise_draws=self.noise_draws, seed=self.seed,
                        path_pictures_use="the first noise draw")
        return info
