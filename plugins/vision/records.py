"""Writing pictures and the arrays beside them; random weights are stamped on every picture so an
untrained model's output is never mistaken for a real explanation.

Tables and JSON go through :mod:`igkit.io.records` (atomic, spreadsheet-safe); pictures and arrays
are written whole or not at all too (rendered in memory, then :func:`igkit.io.records.write_bytes`).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

from igkit.io.records import write_bytes, write_text

RANDOM_STAMP = "RANDOM WEIGHTS"


@dataclass(frozen=True)
class Provenance:
    """Which model made an output: kept in PNG metadata, chart titles and every JSON file."""

    name: str
    weights: str
    random_weights: bool

    def mark(self, title: str) -> str:
        """A picture title, flagged when the weights are random."""
        return f"[RANDOM WEIGHTS] {title}" if self.random_weights else title

    def metadata(self) -> dict[str, str]:
        """Text fields every picture carries (matplotlib's ``savefig(metadata=...)`` takes them too)."""
        return {"igkit-model": self.name, "igkit-weights": self.weights,
                "igkit-random-weights": str(self.random_weights).lower()}


def save_picture(picture: np.ndarray | Image.Image, path: Path, made_by: Provenance,
                 caption: Sequence[str] = ()) -> Path:
    """A PNG with the model and weights in its metadata (and a visible stamp for random weights);
    ``caption``, the lines drawn under the picture, goes into the metadata too (``igkit-caption``)."""
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    image = stamp(image.convert("RGB"), made_by)
    info = PngInfo()
    for key, value in made_by.metadata().items():
        info.add_text(key, value)
    if caption:
        info.add_text("igkit-caption", "\n".join(caption))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return write_bytes(path, buffer.getvalue())


def stamp(image: Image.Image, made_by: Provenance) -> Image.Image:
    """Write "RANDOM WEIGHTS" across the top of a picture made with an untrained model."""
    if not made_by.random_weights:
        return image
    image = image.copy()
    draw = ImageDraw.Draw(image)
    box = draw.textbbox((2, 2), RANDOM_STAMP)
    draw.rectangle(box, fill=(0, 0, 0))
    draw.text((2, 2), RANDOM_STAMP, fill=(255, 64, 64))
    return image


def save_array(path: Path, array: np.ndarray) -> Path:
    """A ``.npy`` file (float32), written whole or not at all."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, dtype=np.float32))
    return write_bytes(path, buffer.getvalue())


def write_matrix(path: Path, matrix: np.ndarray) -> Path:
    """A 2-D map (rows = image rows) as CSV without a header, beside the picture it draws."""
    buffer = io.StringIO()
    np.savetxt(buffer, np.asarray(matrix, dtype=np.float64), delimiter=",", fmt="%.8g")
    return write_text(path, buffer.getvalue())
