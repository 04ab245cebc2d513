"""Writing pictures and the machine-readable files beside them; random weights are stamped on
every picture so an untrained model's output is never mistaken for a real explanation."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

from .models import VisionModel

RANDOM_STAMP = "RANDOM WEIGHTS"


def save_picture(picture: np.ndarray | Image.Image, path: Path, model: VisionModel) -> Path:
    """A PNG with the model and weights in its metadata (and a visible stamp for random weights)."""
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    image = stamp(image.convert("RGB"), model)
    image.save(path, pnginfo=png_metadata(model))
    return path


def stamp(image: Image.Image, model: VisionModel) -> Image.Image:
    """Write "RANDOM WEIGHTS" across the top of a picture made with an untrained model."""
    if not model.random_weights:
        return image
    image = image.copy()
    draw = ImageDraw.Draw(image)
    box = draw.textbbox((2, 2), RANDOM_STAMP)
    draw.rectangle(box, fill=(0, 0, 0))
    draw.text((2, 2), RANDOM_STAMP, fill=(255, 64, 64))
    return image


def png_metadata(model: VisionModel) -> PngInfo:
    info = PngInfo()
    for key, value in metadata(model).items():
        info.add_text(key, value)
    return info


def metadata(model: VisionModel) -> dict[str, str]:
    """Text fields every picture carries (matplotlib's ``savefig(metadata=...)`` takes them too)."""
    return {"igkit-model": model.name, "igkit-weights": model.weights,
            "igkit-random-weights": str(model.random_weights).lower()}


def write_json(path: Path, payload: Any) -> Path:
    path.write_text(json.dumps(payload, indent=2, default=_plain) + "\n")
    return path


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def write_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """A CSV with a header row; floats written with 8 significant digits."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows([_cell(v) for v in row] for row in rows)
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def write_matrix(path: Path, matrix: np.ndarray) -> Path:
    """A 2-D map (rows = image rows) as CSV without a header, beside the picture it draws."""
    np.savetxt(path, np.asarray(matrix, dtype=np.float64), delimiter=",", fmt="%.8g")
    return path


def _cell(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.8g}"
    return value


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
