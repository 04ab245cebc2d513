"""Turning a picture into the tensor a classifier sees, split at the point where IG works.

The counterfactual path α·image lives in *pixel space* (values in [0, 1], after
resizing and cropping, before normalisation), so black is the zero image. The
normalisation (mean/std) belongs to the forward function instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from igkit import IGInputError

#: torchvision's ImageNet recipes resize to 256 and crop 224; ``with_size`` keeps that ratio
RESIZE_OVER_CROP = 256 / 224
#: the most pixels an image may have after its resize (before the crop): a very elongated picture
#: resized by its shorter side would otherwise need gigabytes
MAX_RESIZED_PIXELS = 16_000_000


@dataclass(frozen=True)
class Preprocessing:
    """Resize (shorter side, or exact ``(h, w)``), centre-crop, then normalise with mean/std."""

    resize_size: int | tuple[int, int] | None
    crop_size: int | tuple[int, int] | None
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: InterpolationMode = InterpolationMode.BILINEAR

    @classmethod
    def from_transforms(cls, transforms: object) -> "Preprocessing":
        """Read the recipe of a torchvision ``ImageClassification`` transform (``weights.transforms()``)."""
        return cls(resize_size=_single(getattr(transforms, "resize_size")),
                   crop_size=_single(getattr(transforms, "crop_size")),
                   mean=tuple(getattr(transforms, "mean")), std=tuple(getattr(transforms, "std")),
                   interpolation=getattr(transforms, "interpolation", InterpolationMode.BILINEAR))

    def with_size(self, size: int) -> "Preprocessing":
        """The same recipe at another crop size (smaller images: faster, same architecture)."""
        return Preprocessing(resize_size=round(size * RESIZE_OVER_CROP), crop_size=size, mean=self.mean,
                             std=self.std, interpolation=self.interpolation)

    def pixels(self, image: Image.Image) -> torch.Tensor:
        """An RGB picture as a ``[3, H, W]`` float tensor in [0, 1], resized and cropped."""
        image = self._geometry(image, self.interpolation)
        return TF.pil_to_tensor(image).float().div_(255.0)

    def mask(self, mask: Image.Image) -> np.ndarray:
        """A mask drawn on the original picture, moved through the same resize and crop."""
        return np.asarray(self._geometry(mask, InterpolationMode.NEAREST)) > 0

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(x − mean) / std`` per colour channel, for ``[B, 3, H, W]`` pixels in [0, 1]."""
        mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def describe(self) -> dict:
        """The recipe as plain JSON values (kept in every summary)."""
        return {"resize_size": self.resize_size, "crop_size": self.crop_size, "mean": list(self.mean),
                "std": list(self.std), "interpolation": self.interpolation.value}

    def _geometry(self, image: Image.Image, interpolation: InterpolationMode) -> Image.Image:
        if self.resize_size is not None:
            size = list(self.resize_size) if isinstance(self.resize_size, tuple) else [self.resize_size]
            _check_resized(image.size, self.resize_size)
            image = TF.resize(image, size, interpolation=interpolation, antialias=True)
        if self.crop_size is not None:
            image = TF.center_crop(image, list(_pair(self.crop_size)))
        return image


def _check_resized(size: tuple[int, int], resize: int | tuple[int, int]) -> None:
    """Refuse a picture whose resize would hold more than :data:`MAX_RESIZED_PIXELS` pixels."""
    width, height = size
    if isinstance(resize, tuple):
        new_height, new_width = resize
    else:
        scale = resize / max(1, min(width, height))
        new_width, new_height = round(width * scale), round(height * scale)
    if new_width * new_height > MAX_RESIZED_PIXELS:
        raise IGInputError(f"the image is {width:,} × {height:,} pixels: resized so its shorter side is "
                           f"{resize} it would be {new_width:,} × {new_height:,} (at most "
                           f"{MAX_RESIZED_PIXELS:,} pixels are allowed); crop it to a less elongated shape")


def _single(values: Sequence[int] | int | None) -> int | tuple[int, int] | None:
    if values is None or isinstance(values, int):
        return values
    values = list(values)
    return values[0] if len(values) == 1 else (values[0], values[1])


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else size
