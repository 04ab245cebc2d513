"""Human-drawn object boxes for localisation: Pascal-VOC XML (the ImageNet localisation format)
or a CSV ``image,xmin,ymin,xmax,ymax``, turned into a mask on the model's input."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from igkit import IGInputError, InputFileError, read_table

CSV_COLUMNS = ("image", "xmin", "ymin", "xmax", "ymax")


@dataclass(frozen=True)
class Boxes:
    """Boxes in the pixel coordinates of a picture of ``size`` (width, height); None: the image's own."""

    boxes: tuple[tuple[float, float, float, float], ...]
    size: tuple[int, int] | None = None

    def mask(self, image_size: tuple[int, int]) -> Image.Image:
        """The boxes filled in on a blank picture of ``image_size`` (rescaled if drawn on another size)."""
        sx, sy = (image_size[0] / self.size[0], image_size[1] / self.size[1]) if self.size else (1.0, 1.0)
        mask = Image.new("L", image_size, 0)
        draw = ImageDraw.Draw(mask)
        for xmin, ymin, xmax, ymax in self.boxes:
            draw.rectangle((xmin * sx, ymin * sy, xmax * sx, ymax * sy), fill=255)
        return mask


class BoxSource:
    """Finds the boxes of an image: in a CSV, in a folder of XML files, or beside the image."""

    def __init__(self, source: str | Path | None):
        self.source = Path(source) if source is not None else None
        self.table: dict[str, list[tuple[float, float, float, float]]] | None = None
        if self.source is not None:
            if not self.source.exists():
                raise IGInputError(f"--boxes {self.source}: no such file or folder")
            if self.source.is_file():
                self.table = read_box_csv(self.source)

    def for_image(self, image: Path) -> Boxes | None:
        """The boxes drawn on ``image``, or None when it has none."""
        if self.table is not None:
            rows = self.table.get(image.name) or self.table.get(image.stem)
            return Boxes(tuple(rows)) if rows else None
        xml = (self.source or image.parent) / f"{image.stem}.xml"
        return read_voc_xml(xml) if xml.is_file() else None


def read_voc_xml(path: Path) -> Boxes:
    """All ``<object><bndbox>`` boxes of a Pascal-VOC annotation, with its ``<size>``."""
    try:
        root = ET.parse(path).getroot()
        size = root.find("size")
        reference = (int(float(size.findtext("width"))), int(float(size.findtext("height")))) \
            if size is not None and size.findtext("width") else None
        boxes = tuple(tuple(float(obj.find("bndbox").findtext(k)) for k in CSV_COLUMNS[1:])
                      for obj in root.iter("object"))
    except (ET.ParseError, AttributeError, TypeError, ValueError) as exc:
        raise IGInputError(f"{path}: not a Pascal-VOC annotation with <object><bndbox> xmin/ymin/xmax/ymax "
                           f"({exc})") from exc
    return Boxes(boxes, reference)


def read_box_csv(path: Path) -> dict[str, list[tuple[float, float, float, float]]]:
    """Boxes by image file name (or stem) from a CSV with columns image,xmin,ymin,xmax,ymax
    (UTF-8 with or without BOM, LF or CRLF; line numbers in messages are the file's own)."""
    table: dict[str, list[tuple[float, float, float, float]]] = {}
    _, rows = read_table(path, required=CSV_COLUMNS)
    for line, row in rows:
        try:
            box = tuple(float(row[c]) for c in CSV_COLUMNS[1:])
        except (TypeError, ValueError) as exc:
            raise InputFileError(f"{path}, line {line}: box coordinates must be numbers ({exc})") from None
        table.setdefault(row["image"].strip(), []).append(box)
    return table
