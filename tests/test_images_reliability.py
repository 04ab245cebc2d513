"""Pictures read defensively (issue 22): a named pipe or a device is refused without blocking, a
picture's dimensions and pixel count are checked from its header before decoding (a 1 × 2,000,000
PNG of a few kilobytes is refused with a sentence), an elongated picture whose resize would need
gigabytes is refused, NaN/infinite float pixels are refused, ``--size`` is bounded; the good
pictures of the same run are explained as if alone."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from igkit import IGInputError
from igkit.cli.main import main
from igkit.plugins.vision.images import MAX_PIXELS, MAX_SIDE, decode_image, read_image
from igkit.plugins.vision.preprocessing import Preprocessing

FAST = ["--model", "squeezenet1_1", "--weights", "random", "--size", "32", "--steps", "4", "--frames", "2",
        "--curve-points", "2", "--layers", "", "--quiet", "--no-pictures", "--threads", "1"]


def picture(path: Path, seed: int = 0) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (36, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_header_limits_refuse_before_decoding(tmp_path):
    Image.new("L", (2_000_000, 1)).save(tmp_path / "strip.png")
    assert (tmp_path / "strip.png").stat().st_size < 100_000  # tiny on disk, 2 megapixels in a line
    with pytest.raises(IGInputError, match=r"strip.png: refused, the image is too large to decode safely: "
                                           r"2,000,000 × 1 pixels"):
        read_image(tmp_path / "strip.png")
    assert MAX_SIDE < 2_000_000 and MAX_PIXELS == 40_000_000


def test_an_elongated_picture_is_refused_before_its_resize(tmp_path):
    Image.new("RGB", (20_000, 2)).save(tmp_path / "line.png")
    image = read_image(tmp_path / "line.png")  # within the header limits ...
    with pytest.raises(IGInputError, match="crop it to a less elongated shape"):
        Preprocessing(256, 224).pixels(image)   # ... but 2,560,000 × 256 after the resize


def test_nan_float_pixels_are_refused_not_drawn_black(tmp_path):
    Image.fromarray(np.full((16, 16), np.nan, dtype=np.float32), "F").save(tmp_path / "nan.tif")
    with pytest.raises(IGInputError, match="256 of its 256 pixel values are NaN or infinite"):
        read_image(tmp_path / "nan.tif")
    values = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    Image.fromarray(values, "F").save(tmp_path / "fine.tif")
    assert read_image(tmp_path / "fine.tif").size == (16, 16)


@pytest.mark.parametrize("data", [b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b"GIF89a" + b"\xff" * 20,
                                  b"II*\x00" + b"\x00" * 30, b"BM" + b"\xff" * 60])
def test_damaged_headers_are_input_errors(data):
    with pytest.raises(IGInputError):
        decode_image(data)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_bad_pictures_in_a_folder_are_skipped_with_reasons_and_the_good_one_is_written(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    picture(folder / "good.png")
    os.mkfifo(folder / "pipe.png")
    Image.new("L", (2_000_000, 1)).save(folder / "strip.png")
    Image.fromarray(np.full((8, 8), np.inf, dtype=np.float32), "F").save(folder / "inf.tif")
    out = tmp_path / "out"
    code = main(["vision", "explain", str(folder), "--out", str(out), *FAST])
    err = capsys.readouterr().err
    assert code == 1, err
    items = {Path(e["source"]).name: e for e in json.loads((out / "report.json").read_text())["items"]}
    assert items["good.png"]["status"] == "written"
    assert "not a regular file" in items["pipe.png"]["reason"]
    assert "too large to decode safely" in items["strip.png"]["reason"]
    assert "NaN or infinite" in items["inf.tif"]["reason"]
    alone = tmp_path / "alone"
    assert main(["vision", "explain", str(folder / "good.png"), "--out", str(alone), *FAST]) == 0
    capsys.readouterr()
    (entry,) = json.loads((alone / "report.json").read_text())["items"]
    np.testing.assert_allclose(np.load(out / items["good.png"]["folder"] / "attributions_ig.npy"),
                               np.load(alone / entry["folder"] / "attributions_ig.npy"), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("size", ["100000", "8", "0"])
def test_size_out_of_range_is_one_error_line(tmp_path, capsys, size):
    picture(tmp_path / "a.png")
    options = [o if o != "32" else size for o in FAST]
    code = main(["vision", "explain", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), *options])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("igkit: error:") and "from 32" in err and "to 1024" in err, err
    assert not (tmp_path / "out" / "report.json").exists()
