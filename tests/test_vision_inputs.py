"""Vision inputs: every Pillow mode becomes the right RGB, bad files are refused with their name
and reason, labels resolve (or list the closest names), boxes land where they were drawn."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from igkit import BadItem, IGInputError, InputFileError, Item
from igkit.plugins.vision.baselines import BaselineSpec
from igkit.plugins.vision.boxes import BoxSource, read_voc_xml
from igkit.plugins.vision.domain import VisionDomain, readable_name
from igkit.plugins.vision.images import read_image
from igkit.plugins.vision.labels import resolve_label
from igkit.plugins.vision.models import IMAGENET_CATEGORIES
from igkit.plugins.vision.preprocessing import Preprocessing


def _pixel(path) -> tuple[int, int, int]:
    return read_image(path).getpixel((0, 0))


@pytest.mark.parametrize("mode, value, expected", [
    ("L", 128, (128, 128, 128)),
    ("CMYK", (0, 255, 255, 0), (255, 0, 0)),          # pure red in CMYK
    ("RGBA", (10, 20, 30, 0), (255, 255, 255)),        # fully transparent: white
    ("RGBA", (10, 20, 30, 255), (10, 20, 30)),         # opaque: unchanged
    ("LA", (0, 0), (255, 255, 255)),
    ("I;16", 65535, (255, 255, 255)),                  # 16-bit white stays white (scaled, not clipped)
    ("I;16", 32896, (128, 128, 128)),
])
def test_modes_are_converted_to_rgb(tmp_path, mode, value, expected):
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png")
    Image.new(mode, (4, 3), value).save(path)
    image = read_image(path)
    assert image.mode == "RGB" and image.size == (4, 3)
    assert _pixel(path) == expected


def test_palette_with_transparency_becomes_white(tmp_path):
    image = Image.new("P", (4, 4), 0)
    image.putpalette([200, 10, 10] + [0, 0, 0] * 255)
    image.info["transparency"] = 0
    image.save(tmp_path / "p.png", transparency=0)
    opaque = Image.new("P", (4, 4), 0)
    opaque.putpalette([200, 10, 10] + [0, 0, 0] * 255)
    opaque.save(tmp_path / "q.png")
    assert _pixel(tmp_path / "p.png") == (255, 255, 255)
    assert _pixel(tmp_path / "q.png") == (200, 10, 10)


def test_bad_files_are_refused_with_name_and_reason(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"this is not an image at all")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "whole.jpg", quality=90)
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    cases = {"missing.jpg": "no such file", "empty.jpg": "empty (0 bytes)",
             "junk.png": "not an image Pillow can read", "cut.jpg": "corrupt image data"}
    for name, reason in cases.items():
        with pytest.raises(IGInputError) as err:
            read_image(tmp_path / name)
        assert name in str(err.value) and reason in str(err.value)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    Image.new("L", (100, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6_000)  # 10,000 pixels: above the warning limit
    with pytest.raises(IGInputError, match="too large to decode safely"):
        read_image(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4_000)  # above twice the limit: Pillow's own error
    with pytest.raises(IGInputError, match="too large to decode safely"):
        read_image(tmp_path / "big.png")


def test_tiny_image_is_resized_to_the_crop():
    recipe = Preprocessing(resize_size=256, crop_size=224).with_size(48)
    pixels = recipe.pixels(Image.new("RGB", (3, 2), (255, 0, 0)))
    assert pixels.shape == (3, 48, 48)
    assert torch.allclose(pixels[0], torch.ones(48, 48)) and pixels[1:].abs().max() == 0


def test_normalisation_happens_after_the_pixel_path():
    recipe = Preprocessing(resize_size=None, crop_size=None, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    x = torch.zeros(1, 3, 2, 2)
    assert recipe.normalize(x)[0, :, 0, 0].tolist() == [-1.0, -1.0, 0.0]  # black is the zero image


def test_folders_are_searched_recursively_in_sorted_order_and_named_files_are_kept(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "b.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "a.JPG")
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (4, 4), (9, 9, 9)).save(tmp_path / "sub" / "c.png")
    (tmp_path / ".hidden").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / ".hidden" / "d.png")
    (tmp_path / "a.xml").write_text("<annotation/>")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    items = list(VisionDomain().read_items([str(tmp_path), str(tmp_path / "notes.txt"), str(tmp_path / "empty"),
                                            str(tmp_path / "absent.png")]))
    found = [Path(i.source).relative_to(tmp_path).as_posix() for i in items if isinstance(i, Item)]
    assert found == ["a.JPG", "b.png", "sub/c.png", "notes.txt"]  # a named file is kept (and reported later)
    bad = {Path(i.source).name: i.reason for i in items if isinstance(i, BadItem)}
    assert bad == {"empty": "no image files in this folder or its sub-folders", "absent.png": "no such file"}


def test_item_digest_is_the_file_content_and_the_label(tmp_path):
    Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "a.png")
    Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "b.png")
    domain = VisionDomain()
    (a, b) = domain.read_items([str(tmp_path / "a.png"), str(tmp_path / "b.png")])
    assert a.digest == b.digest and a.name == "a"  # same bytes: the same work
    (labelled,) = domain.read_items([str(tmp_path / "a.png")], label="tabby")
    assert labelled.digest != a.digest
    Image.new("RGB", (4, 4), (3, 2, 1)).save(tmp_path / "a.png")
    (changed,) = domain.read_items([str(tmp_path / "a.png")])
    assert changed.digest != a.digest


def test_readable_names_are_ascii():
    assert readable_name("café au lait") == "cafe_au_lait"
    assert readable_name("猫") == "image"
    assert readable_name("../x") == "x"


def test_labels_resolve_by_name_or_index_and_suggest_close_names():
    assert resolve_label("tabby", IMAGENET_CATEGORIES) == IMAGENET_CATEGORIES.index("tabby")
    assert resolve_label("Reflex Camera", IMAGENET_CATEGORIES) == IMAGENET_CATEGORIES.index("reflex camera")
    assert resolve_label("281", IMAGENET_CATEGORIES) == 281
    with pytest.raises(IGInputError) as err:
        resolve_label("reflex camra", IMAGENET_CATEGORIES)
    assert "closest class names" in str(err.value) and "'reflex camera'" in str(err.value)
    with pytest.raises(IGInputError, match="out of range"):
        resolve_label(1000, IMAGENET_CATEGORIES)


def test_boxes_follow_resize_and_crop(tmp_path):
    """A box on the right half of a 200×100 picture covers the right half of the centre crop."""
    (tmp_path / "wide.xml").write_text(
        "<annotation><size><width>200</width><height>100</height></size>"
        "<object><name>n0</name><bndbox><xmin>100</xmin><ymin>0</ymin><xmax>199</xmax><ymax>99</ymax>"
        "</bndbox></object></annotation>")
    boxes = BoxSource(None).for_image(tmp_path / "wide.png")
    recipe = Preprocessing(resize_size=50, crop_size=50)  # 200×100 → 100×50 → centre 50×50
    mask = recipe.mask(boxes.mask((200, 100)))
    assert mask.shape == (50, 50)
    assert mask[:, 25:].all() and not mask[:, :25].any()
    half = recipe.mask(boxes.mask((400, 200)))  # drawn on a 200×100 copy of a 400×200 picture
    assert (half == mask).all()


def test_box_files_with_problems_say_what_is_wrong(tmp_path):
    (tmp_path / "bad.xml").write_text("<annotation><object><bndbox><xmin>x</xmin></bndbox></object>")
    with pytest.raises(IGInputError, match="Pascal-VOC"):
        read_voc_xml(tmp_path / "bad.xml")
    (tmp_path / "boxes.csv").write_text("image,x0,y0\na.png,1,2\n")
    with pytest.raises(InputFileError, match="has no column 'xmin'"):
        BoxSource(tmp_path / "boxes.csv")
    (tmp_path / "boxes.csv").write_text("image,xmin,ymin,xmax,ymax\n\na.png,1,2,x,4\n")
    with pytest.raises(InputFileError, match="boxes.csv, line 3: box coordinates must be numbers"):
        BoxSource(tmp_path / "boxes.csv")


def test_baselines_have_the_image_shape_and_noise_draws_are_averaged():
    pixels = torch.rand(3, 32, 32)
    assert BaselineSpec("black").stack(pixels).abs().max() == 0
    blurred = BaselineSpec("blur").stack(pixels)[0, 0]
    assert blurred.shape == pixels.shape and blurred.std() < pixels.std()
    noise = BaselineSpec("noise", noise_draws=3).stack(pixels)
    assert noise.shape == (3, 1, 3, 32, 32) and not torch.equal(noise[0], noise[1])
    assert torch.equal(noise, BaselineSpec("noise", noise_draws=3).stack(pixels))  # seeded
    with pytest.raises(IGInputError, match="unknown baseline"):
        BaselineSpec("grey")
    assert np.isclose(float(noise.mean()), 0.5, atol=0.05)
