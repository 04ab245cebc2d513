"""Reading user pictures: any file Pillow opens, turned into plain RGB, with refusals that say
which file is wrong and why (missing, empty, corrupt, or too large to decode safely)."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from igkit import IGInputError

#: 16-bit and float greyscale modes that ``convert("RGB")`` would clip instead of scale
WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def read_image(path: str | Path) -> Image.Image:
    """Open ``path`` as an RGB picture (greyscale, CMYK, palette and alpha converted).

    Raises ``IGInputError`` naming the file and the reason when it cannot be used.
    """
    path = Path(path)
    if not path.exists():
        raise IGInputError(f"{path}: no such file")
    if path.is_dir():
        raise IGInputError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise IGInputError(f"{path}: the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return to_rgb(ImageOps.exif_transpose(image))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise IGInputError(f"{path}: refused, the image is too large to decode safely "
                           f"({exc}); downscale it first") from exc
    except UnidentifiedImageError as exc:
        raise IGInputError(f"{path}: not an image Pillow can read (unknown or corrupt format)") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or damaged image data
        raise IGInputError(f"{path}: corrupt image data ({exc})") from exc


def to_rgb(image: Image.Image) -> Image.Image:
    """Plain 8-bit RGB; transparent areas become white, wide greyscale is rescaled, not clipped."""
    if image.mode in WIDE_MODES:
        values = np.asarray(image, dtype=np.float64)
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


def image_extensions() -> set[str]:
    """File endings Pillow can open (``.jpg``, ``.png``, ``.tif``, ...)."""
    return {ext.lower() for ext in Image.registered_extensions()}


def collect_images(paths: Iterable[str | Path]) -> list[Path]:
    """Files named on the command line, with folders expanded to the image files inside them.

    A named file is always kept (so a broken one is reported, not ignored); inside a
    folder only files with an image ending count, so box files and notes are left alone.
    """
    extensions = image_extensions()
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                            and f.suffix.lower() in extensions)
        else:
            found.append(p)
    if not found:
        raise IGInputError(f"no image files found in {', '.join(map(str, paths))}")
    return found
