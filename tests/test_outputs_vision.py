"""Image outputs say what they explain and are honest about labels: the model and weights, the
class and where its name comes from, F(input) and F(baseline) on both scales, the baseline; the
overlay uses igkit's one colour convention; a weights file's classes are indices unless --labels.
The IG overlay (also when redrawn on a shared scale) and every frame of the interior-gradients GIF
carry that caption and a legend under the picture."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("torchvision", reason="the vision plugin needs torchvision")

import igkit  # noqa: E402
from igkit.outputs import colours  # noqa: E402
from igkit.cli.main import main  # noqa: E402

FAST = ["--size", "32", "--steps", "4", "--frames", "2", "--curve-points", "3", "--quiet", "--threads", "1"]


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "noise.png"
    Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    from torchvision.models import get_model

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "mine.pth"
    torch.save(get_model("googlenet", weights=None, aux_logits=False, init_weights=True).state_dict(), path)
    return path


def _item(out):
    (entry,) = json.loads((out / "report.json").read_text())["items"]
    return out / entry["folder"]


def _inked_rows(picture: np.ndarray) -> int:
    """How many rows of an RGB picture hold dark pixels (text)."""
    return int((np.asarray(picture)[..., :3] < 128).any(axis=(1, 2)).sum())


def _caption_height(lines, width: int) -> int:
    from igkit.plugins.vision.figures import caption_pixels

    return caption_pixels(lines, width).shape[0]


def test_summary_and_figure_say_what_is_explained(tmp_path, photo):
    out = tmp_path / "out"
    assert main(["vision", "explain", str(photo), "--out", str(out), "--weights", "random", *FAST]) == 0
    assert json.loads((out / "run.json").read_text())["model"].startswith("googlenet (random")
    item = _item(out)
    summary = json.loads((item / "summary.json").read_text())
    lines = summary["explains"]["lines"]
    assert lines[0].startswith("model: googlenet (random") and "(weights " in lines[0]
    index = summary["target_index"]
    assert lines[1].startswith(f"target: {summary['label']['label']} — class {index}, the model's top prediction")
    assert "(probability), logit " in lines[2] and "baseline: a black image (the paper's)" in lines[2]
    overlay = json.loads((item / "overlay.json").read_text())
    assert overlay["colours"]["positive"] == colours.RAISES and overlay["colours"]["negative"] == colours.LOWERS
    assert overlay["legend"].startswith("red: raises the probability of")
    assert "this image's own scale" in overlay["scale"]
    assert (item / "figure4.png").is_file()
    with Image.open(item / "ig_overlay.png") as png:   # the overlay's own legend and scale under it
        assert png.text["igkit-caption"].split("\n") == [*lines, "overlay: " + overlay["legend"], overlay["scale"]]
    # every GIF frame: the picture (32 px enlarged to 224) over the caption block of these lines
    with Image.open(item / "interior.gif") as gif:
        comment = gif.info["comment"].decode("utf-8").split("\n")
        sizes = set()
        for frame in range(gif.n_frames):
            gif.seek(frame)
            picture = np.asarray(gif.convert("RGB"))
            sizes.add(picture.shape)
            assert _inked_rows(picture[224:]) > 40          # the caption text is drawn in every frame
    caption = comment[1:]
    assert caption[:len(lines)] == lines                     # model, target, F(input), F(baseline), baseline
    assert f"the probability of {summary['label']['label']}" in caption[len(lines)]
    assert caption[-1].startswith("brightness scale: each frame its own")
    (shape,) = sizes
    assert shape[0] == 224 + _caption_height(caption, shape[1])


def test_a_caption_block_wraps_to_its_width_and_grows_with_the_text():
    from igkit.plugins.vision.figures import caption_pixels

    short, long = caption_pixels(["model: m"], 640), caption_pixels(["target " * 150], 640)
    assert short.shape[1] == long.shape[1] == 640 and short.dtype == np.uint8
    assert 0 < _inked_rows(short) < _inked_rows(long) and long.shape[0] > 5 * short.shape[0]
    assert not (long[:, -4:] < 128).any()                   # no line runs off the right edge


def test_overlay_draws_raises_red_and_lowers_blue():
    from igkit.plugins.vision.render import RenderSettings, overlay

    image = np.full((4, 4, 3), 0.5)
    attributions = torch.zeros(3, 4, 4)
    attributions[:, 0, 0], attributions[:, 3, 3] = 1.0, -1.0
    picture = overlay(image, attributions, RenderSettings(clip_high=100, outline_top=0)).astype(int)
    red, blue = picture[0, 0], picture[3, 3]
    assert red[0] > red[2] and blue[2] > blue[0]


def test_weights_file_gets_class_indices_unless_labels_are_given(tmp_path, photo, weights_file):
    from igkit.plugins.vision.models import load_model

    model = load_model("googlenet", str(weights_file), size=32, device="cpu")
    assert model.categories[:2] == ["class 0", "class 1"] and model.random_weights is None
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"thing {i}\n" for i in range(1000)), encoding="utf-8")
    named = load_model("googlenet", str(weights_file), size=32, device="cpu", labels=str(labels))
    assert named.categories[7] == "thing 7"
    out = tmp_path / "out"
    assert main(["vision", "explain", str(photo), "--out", str(out), "--weights", str(weights_file),
                 "--labels", str(labels), *FAST]) == 0
    summary = json.loads((_item(out) / "summary.json").read_text())
    assert summary["label"]["label"].startswith("thing ") and summary["random_weights"] is None
    assert f"names from --labels {labels}" in summary["explains"]["lines"][1]


def test_a_labels_file_of_the_wrong_length_is_one_clear_error(tmp_path, photo, weights_file, capsys):
    labels = tmp_path / "few.txt"
    labels.write_text("cat\ndog\n", encoding="utf-8")
    code = main(["vision", "explain", str(photo), "--out", str(tmp_path / "o"), "--weights", str(weights_file),
                 "--labels", str(labels), *FAST])
    assert code == 2
    assert "has 2 class names but the model has 1000 classes" in capsys.readouterr().err


def test_image_results_reach_their_source_like_every_domain(photo):
    found = igkit.explain("vision", [str(photo)], weights="random", size=32, frames=2, curve_points=3,
                          integration={"steps": 4})
    assert found[0].item.source == str(photo) == found[0].attribution.item.source


def test_shared_scale_redraws_every_overlay_on_one_scale_and_says_so(tmp_path, photo):
    other = tmp_path / "other.png"
    Image.fromarray((np.random.default_rng(1).random((40, 40, 3)) * 120).astype(np.uint8)).save(other)
    out = tmp_path / "out"
    assert main(["vision", "explain", str(photo), str(other), "--out", str(out), "--weights", "random",
                 "--shared-scale", *FAST]) == 0
    report = json.loads((out / "report.json").read_text())
    notes = [json.loads((out / e["folder"] / "overlay.json").read_text())["scale"] for e in report["items"]]
    assert all("shared by every item of this run (--shared-scale)" in n for n in notes)
    assert len({n.split(",")[0] for n in notes}) == 1        # the same full-colour value for both
    for entry, note in zip(report["items"], notes):           # the redrawn picture says so under itself
        item = out / entry["folder"]
        described = json.loads((item / "overlay.json").read_text())
        with Image.open(item / "ig_overlay.png") as png:
            caption = png.text["igkit-caption"].split("\n")
            picture = np.asarray(png.convert("RGB"))
        assert caption == [*described["explains"], "overlay: " + described["legend"], note]
        assert described["legend"] == colours.legend(
            f"the probability of {json.loads((item / 'summary.json').read_text())['label']['label']}")
        assert picture.shape[0] == 224 + _caption_height(caption, picture.shape[1])
        assert _inked_rows(picture[224:]) > 40


def test_a_chosen_label_is_said_to_be_chosen(tmp_path, photo):
    out = tmp_path / "out"
    assert main(["vision", "explain", str(photo), "--out", str(out), "--weights", "random", "--label", "3",
                 *FAST]) == 0
    summary = json.loads((_item(out) / "summary.json").read_text())
    assert "class 3, the class given by --label" in summary["explains"]["lines"][1]
    assert "the weights are untrained" in summary["explains"]["lines"][1]
