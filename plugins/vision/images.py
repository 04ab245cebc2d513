"""Reading user pictures: any file Pillow opens, turned into plain RGB, with refusals that say
which file is wrong and why (missing, empty, corrupt, not a regular file, too large to decode
safely, or holding NaN/infinite values).

Limits, checked before decoding: files of at most :data:`MAX_IMAGE_BYTES`; sides of at most
:data:`MAX_SIDE` pixels; at most :data:`MAX_PIXELS` pixels in all, read from the header (Pillow's
own decompression-bomb limit, ``Image.MAX_IMAGE_PIXELS``, also holds).
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from igkit import IGInputError
from igkit.io.records import read_bytes

if TYPE_CHECKING:
    import torch

    from .models import VisionModel

#: the largest image file read: 256 MiB
MAX_IMAGE_BYTES = 256 * 2**20
#: the most pixels of a picture (a 40-megapixel photograph): decoding and converting it takes ~1 GiB
MAX_PIXELS = 40_000_000
#: the longest side in pixels (a 1 × 2,000,000 strip is 2 megapixels but would be resized to
#: 256 × 512,000,000)
MAX_SIDE = 30_000

#: 16-bit and float greyscale modes that ``convert("RGB")`` would clip instead of scale
WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def read_image(path: str | Path) -> Image.Image:
    """Open ``path`` as an RGB picture (greyscale, CMYK, palette and alpha converted).

    Raises ``IGInputError`` naming the file and the reason when it cannot be used.
    """
    path = Path(path)
    try:
        return decode_image(read_image_bytes(path))
    except IGInputError as exc:
        raise IGInputError(f"{path}: {exc}") from exc.__cause__


def read_image_bytes(path: Path) -> bytes:
    """The file's bytes, or an ``IGInputError`` saying why they cannot be read (not naming the file)."""
    if not path.exists():
        raise IGInputError("no such file")
    if path.is_dir():
        raise IGInputError("is a folder, not an image")
    try:
        data = read_bytes(path, MAX_IMAGE_BYTES)
    except IGInputError as exc:  # not a regular file, too large, unreadable: said without the name
        raise IGInputError(str(exc).removeprefix(f"{path} ").removeprefix(f"{path}: ")) from None
    if not data:
        raise IGInputError("the file is empty (0 bytes)")
    return data


def decode_image(data: bytes) -> Image.Image:
    """An image file's bytes as plain RGB, or an ``IGInputError`` with the reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                check_size(*image.size)
                image.load()
                return to_rgb(ImageOps.exif_transpose(image))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise IGInputError(f"refused, the image is too large to decode safely ({exc}); downscale it "
                           f"first") from exc
    except IGInputError:
        raise
    except UnidentifiedImageError as exc:
        raise IGInputError("not an image Pillow can read (unknown or corrupt format)") from exc
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders fail on damaged data in many ways
        raise IGInputError(f"corrupt image data ({type(exc).__name__}: {str(exc)[:200]})") from exc


def check_size(width: int, height: int) -> None:
    """Refuse, from the header, a picture too large or too elongated to decode and resize safely."""
    if width < 1 or height < 1:
        raise IGInputError(f"the image is {width} × {height} pixels; it has no pixels")
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise IGInputError(f"refused, the image is too large to decode safely: {width:,} × {height:,} pixels "
                           f"(igkit reads at most {MAX_PIXELS:,} pixels and sides of at most {MAX_SIDE:,}); "
                           f"downscale or crop it first")


def to_rgb(image: Image.Image) -> Image.Image:
    """Plain 8-bit RGB; transparent areas become white, wide greyscale is rescaled, not clipped.
    NaN or infinite values (float TIFFs) are refused: no colour stands for them."""
    if image.mode in WIDE_MODES:
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            bad = int((~np.isfinite(values)).sum())
            raise IGInputError(f"{bad:,} of its {values.size:,} pixel values are NaN or infinite; replace "
                               f"them with numbers (e.g. 0) before explaining the image")
        top = values.max() if values.size else 0.0
        scale = 255.0 / (65535.0 if top > 255 else 255.0 if top > 1 else 1.0)
        image = Image.fromarray(np.clip(values * scale, 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image.convert("RGB")


def image_pixels(model: "VisionModel", value: Any) -> "torch.Tensor":
    """An item's pixels ``[3, H, W]`` in [0, 1] as the model sees them (resized and cropped): a
    file path, a PIL image, or a ``[3, H, W]`` (or ``[1, 3, H, W]``) float tensor taken as it is."""
    import torch

    if isinstance(value, torch.Tensor):
        pixels = value.detach()
        if pixels.dim() == 4 and pixels.shape[0] == 1:
            pixels = pixels[0]
        if pixels.dim() != 3 or pixels.shape[0] != 3 or not pixels.dtype.is_floating_point:
            raise IGInputError(f"an image tensor must be [3, H, W] floats in [0, 1], got {tuple(pixels.shape)} "
                               f"{pixels.dtype}")
        return pixels.float().cpu()
    if isinstance(value, (str, Path)):
        return model.preprocessing.pixels(decode_image(read_image_bytes(Path(value))))
    return model.preprocessing.pixels(to_rgb(value))


def image_extensions() -> set[str]:
    """File endings Pillow can open (``.jpg``, ``.png``, ``.tif``, ...)."""
    return {ext.lower() for ext in Image.registered_extensions()}


def find_images(folder: Path) -> Iterator[Path]:
    """Image files under ``folder`` and its sub-folders, sorted by path; hidden files and
    folders are left out, and so are files without an image ending (box files, notes)."""
    extensions = image_extensions()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in extensions:
                yield Path(root) / name
