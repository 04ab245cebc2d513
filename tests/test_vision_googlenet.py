"""GoogLeNet (the real Inception v1 architecture, weights=None) through the vision plugin:
completeness at default settings, agreement with Captum, every artifact written and readable,
a folder of real photographs with one corrupt file, re-runs, the evaluation command, and the
generic ``igkit explain --domain vision`` route with ``--weights``.

Untrained GoogLeNet maps every image to almost the same output (its activations shrink layer
by layer), which would make every check pass trivially. The fixture therefore measures batch-norm
statistics on random images in [0, 1] fed to the network (the weights stay torchvision's random
initialisation) and sets the classifier bias so the black image scores 0, as Inception does
(paper: Incp(0) ≈ 0). It is saved as safetensors and loaded
with ``--weights FILE`` like a user's checkpoint.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torchvision.models import googlenet

import igkit
from igkit.cli.main import main
from igkit.plugins.vision import Preprocessing, VisionModel, load_model
from igkit.plugins.vision.models import IMAGENET_CATEGORIES

SIZE = 48
PHOTOS = ["astronaut", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "brick",
          "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket", "text", "cell"]


def _photo(name: str) -> Image.Image:
    from skimage import data
    return Image.fromarray(getattr(data, name)())


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    torch.manual_seed(0)
    net = googlenet(weights=None, aux_logits=False, init_weights=True, transform_input=True)
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.reset_running_stats()
        bn.momentum = None  # running stats become the plain average over the calibration batches
    generator = torch.Generator().manual_seed(0)
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.rand(16, 3, SIZE, SIZE, generator=generator) * torch.rand(16, 1, 1, 1, generator=generator))
    net.eval()
    model = VisionModel(net, Preprocessing(resize_size=None, crop_size=None), IMAGENET_CATEGORIES)
    with torch.no_grad():
        net.fc.bias -= model.logits(torch.zeros(1, 3, SIZE, SIZE))[0]
    path = tmp_path_factory.mktemp("googlenet") / "googlenet-calibrated.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def model(weights_file):
    return load_model("googlenet", str(weights_file), size=SIZE)


def _pixels(model, name):
    return model.preprocessing.pixels(_photo(name).convert("RGB"))


FEW_PICTURES = {"frames": 2, "curve_points": 2, "layers": []}


def _explain_pixels(model, pixels, integration=None, **settings):
    (explanation,) = igkit.explain("vision", [pixels], model=model, integration=integration,
                                   **{**FEW_PICTURES, **settings})
    return explanation


def test_completeness_within_one_percent_at_default_settings(model):
    assert igkit.get_domain("vision").integration.tolerance == 0.01  # integration left at its default
    for name in ("astronaut", "chelsea"):
        result = _explain_pixels(model, _pixels(model, name)).ig
        gap = float(result.score_input[0] - result.score_baseline[0])
        assert gap > 0.01  # the label's probability rises along the path: a real test
        assert float(result.completeness_error[0]) <= 0.01, name


def test_attributions_match_captum(model):
    from captum.attr import IntegratedGradients

    x = _pixels(model, "coffee")
    ours = _explain_pixels(model, x, {"steps": 16})
    theirs = IntegratedGradients(model.scorer("probability")).attribute(
        x[None], baselines=torch.zeros_like(x[None]), target=ours.target.index, n_steps=16,
        method="gausslegendre")[0]
    scale = float(theirs.abs().max())
    assert torch.allclose(ours.attributions(0), theirs, atol=1e-4 * scale, rtol=1e-3)


def _explain(out, *images, extra=()):
    return main(["vision", "explain", *map(str, images), "--out", str(out), "--quiet", *extra])


def _folders(out):
    """Input → item folder, from report.json."""
    report = json.loads((out / "report.json").read_text())
    return {e["source"]: out / e["folder"] for e in report["items"] if e.get("folder")}


def test_explain_writes_every_artifact_and_each_opens(model, weights_file, tmp_path):
    photo = tmp_path / "coffee.jpg"
    _photo("coffee").save(photo)
    predicted = _explain_pixels(model, _pixels(model, "coffee"), {"steps": 2}).predicted.index
    label = "0" if predicted != 0 else "1"
    out = tmp_path / "out"
    options = ["--weights", str(weights_file), "--size", str(SIZE), "--steps", "8", "--frames", "4",
               "--curve-points", "5", "--label", label]
    assert _explain(out, photo, extra=options) == 0
    item = _folders(out)[str(photo)]
    assert item.name.startswith("coffee-")
    summary = json.loads((item / "summary.json").read_text())
    for key in ("target", "score_input", "score_baseline", "attribution_sum", "completeness_error",
                "completeness_delta", "steps", "method", "seconds"):
        assert key in summary
    assert summary["misclassified"] is True and summary["target_index"] == int(label)
    assert summary["ig_predicted"]["path_points"] == summary["path_points"] == 8  # the same rule
    expected = {"input.png", "predictions.json", "predictions.csv", "overlay.json", "figure4.png",
                "figure4.json", "figure6.png", "figure6.json", "interior.gif", "interior_trend.png",
                "interior_trend.csv", "saturation.png", "saturation.csv", "layer_saturation.png",
                "layer_saturation.csv"}
    for name in ("ig", "gradients", "ig_predicted"):
        expected |= {f"attributions_{name}.npy", f"importance_{name}.csv", f"{name}_paper.png",
                     f"{name}_overlay.png"}
    assert set(summary["files"]) == expected
    for name in expected:
        path = item / name
        if path.suffix == ".png":
            with Image.open(path) as image:
                image.load()
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".npy":
            assert np.load(path).shape == (3, SIZE, SIZE)
    with Image.open(item / "interior.gif") as gif:
        assert gif.n_frames == 4
        for frame in range(gif.n_frames):
            gif.seek(frame)
            gif.load()
    assert np.loadtxt(item / "importance_ig.csv", delimiter=",").shape == (SIZE, SIZE)
    top5 = json.loads((item / "predictions.json").read_text())["top5"]
    assert len(top5) == 5 and top5[0]["index"] == summary["predicted"]["index"]

    saturation = _rows(item / "saturation.csv")
    assert [float(r["alpha"]) for r in saturation] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert float(saturation[-1]["probability"]) == pytest.approx(summary["label"]["probability"], rel=1e-4)
    trend = _rows(item / "interior_trend.csv")
    assert [float(r["alpha"]) for r in trend] == [0.25, 0.5, 0.75, 1.0]
    layers = _rows(item / "layer_saturation.csv")
    assert {r["layer"] for r in layers} == {"inception3b", "inception4b", "inception4d", "inception5b"}
    at_image = [r for r in layers if float(r["alpha"]) == 1.0]
    assert len(at_image) == 4 and all(abs(float(r["l2"])) < 1e-3 for r in at_image)
    for overview in ("saturation_all.png", "layer_saturation_all.png"):
        with Image.open(out / overview) as image:
            image.load()


def test_rerun_keeps_complete_images_and_redoes_an_incomplete_one(weights_file, tmp_path):
    photo = tmp_path / "rocket.png"
    _photo("rocket").save(photo)
    out = tmp_path / "out"
    options = ["--weights", str(weights_file), "--size", "32", "--steps", "4", "--frames", "2",
               "--curve-points", "2", "--layers", "inception5b", "--no-pictures"]
    assert _explain(out, photo, extra=options) == 0
    item = _folders(out)[str(photo)]
    stamp = os.stat(item / "importance_ig.csv").st_mtime_ns
    assert _explain(out, photo, extra=options) == 0
    report = json.loads((out / "report.json").read_text())
    assert [e["status"] for e in report["items"]] == ["kept"]
    assert os.stat(item / "importance_ig.csv").st_mtime_ns == stamp
    (item / "interior_trend.csv").unlink()  # an incomplete folder is redone
    assert _explain(out, photo, extra=options) == 0
    assert [e["status"] for e in json.loads((out / "report.json").read_text())["items"]] == ["written"]
    assert (item / "interior_trend.csv").is_file()


def _photo_folder(folder):
    """16 real photographs from scikit-image in several formats and modes, 4 crops/flips of real
    photographs, and one corrupt JPEG."""
    folder.mkdir()
    for i, name in enumerate(PHOTOS):
        image = _photo(name)
        if name == "coffee":
            image.convert("CMYK").save(folder / f"{name}.jpg")
        elif name == "chelsea":
            rgba = image.convert("RGBA")
            rgba.putalpha(200)
            rgba.save(folder / f"{name}.png")
        elif name == "rocket":
            image.convert("P", palette=Image.ADAPTIVE).save(folder / f"{name}.png")
        else:
            image.save(folder / (f"{name}.jpg" if i % 2 else f"{name}.png"))
    astronaut, retina = _photo("astronaut"), _photo("retina")
    astronaut.transpose(Image.FLIP_LEFT_RIGHT).save(folder / "astronaut_flipped.jpg")
    astronaut.crop((100, 0, 400, 300)).save(folder / "astronaut_face.png")
    retina.crop((300, 300, 1100, 1100)).save(folder / "retina_centre.jpg")
    _photo("hubble_deep_field").transpose(Image.FLIP_TOP_BOTTOM).crop((0, 0, 500, 500)).save(
        folder / "hubble_corner.png")
    good = (folder / "astronaut_flipped.jpg").read_bytes()
    (folder / "broken.jpg").write_bytes(good[:600])  # a JPEG cut off in its header
    return folder


def test_folder_of_photographs_with_one_corrupt_file(weights_file, tmp_path, capsys):
    folder = _photo_folder(tmp_path / "photos")
    assert len(list(folder.iterdir())) == 21
    out = tmp_path / "out"
    code = _explain(out, folder, extra=["--weights", str(weights_file), "--size", "32", "--steps", "4",
                                        "--frames", "2", "--curve-points", "2", "--layers", "inception5b",
                                        "--no-pictures"])
    assert code == 1  # one image skipped
    report = json.loads((out / "report.json").read_text())
    skipped = [e for e in report["items"] if e["status"] == "skipped"]
    assert [e["source"] for e in skipped] == [str(folder / "broken.jpg")]
    assert "corrupt" in skipped[0]["reason"] and skipped[0]["kind"] == "input"
    assert report["counts"]["written"] == 20
    for item_dir in _folders(out).values():
        assert json.loads((Path(item_dir) / "summary.json").read_text())["files"]
    err = capsys.readouterr().err
    assert err.count("skipped ") == 1 and "broken.jpg" in err
    assert len(_rows(out / "saturation_all.csv")) == 20 * 2


def test_evaluate_reports_aopc_and_box_localisation(weights_file, tmp_path):
    folder = tmp_path / "val"
    folder.mkdir()
    for name in ("astronaut", "chelsea", "rocket"):
        _photo(name).save(folder / f"{name}.jpg")
    width, height = _photo("astronaut").size
    (folder / "astronaut.xml").write_text(  # a box around the whole picture holds everything
        f"<annotation><size><width>{width}</width><height>{height}</height></size><object><name>n1"
        f"</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>{width}</xmax><ymax>{height}</ymax></bndbox>"
        f"</object></annotation>")
    (folder / "chelsea.xml").write_text(
        "<annotation><object><name>n2</name><bndbox><xmin>100</xmin><ymin>50</ymin><xmax>300</xmax>"
        "<ymax>250</ymax></bndbox></object></annotation>")
    out = tmp_path / "eval"
    code = main(["vision", "evaluate", str(folder), "--out", str(out), "--weights", str(weights_file),
                 "--size", "32", "--steps", "4", "--ablate-pixels", "200", "--ablate-per-step", "20", "--quiet"])
    assert code == 0
    result = json.loads((out / "evaluation.json").read_text())
    assert result["images"] == 3 and result["localisation"]["images_with_boxes"] == 2
    by_image = {os.path.basename(e["image"]): e for e in result["per_image"]}
    assert by_image["astronaut.jpg"]["fraction_inside_boxes"] == {"integrated_gradients": 1.0, "gradients": 1.0}
    assert 0 < by_image["chelsea.jpg"]["box_share_of_image"] < 1
    assert by_image["rocket.jpg"]["fraction_inside_boxes"] is None
    for entry in result["per_image"]:
        curves = entry["score_after_step"]
        assert {len(c) for c in curves.values()} == {11}
        assert len({c[0] for c in curves.values()}) == 1  # every curve starts at the untouched image
    aopc = _rows(out / "aopc.csv")
    assert len(aopc) == 11 and float(aopc[0]["integrated_gradients"]) == 0.0
    assert int(aopc[-1]["pixels_ablated"]) == 200
    for picture in ("aopc.png", "localisation.png"):
        with Image.open(out / picture) as image:
            image.load()


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_generic_explain_runs_the_vision_domain_with_weights(weights_file, tmp_path, capsys):
    photo = tmp_path / "moon.png"
    _photo("moon").save(photo)  # greyscale
    absent = tmp_path / "absent.png"
    out = tmp_path / "out"
    code = main(["explain", "--domain", "vision", str(photo), str(absent), "--out", str(out), "--quiet",
                 "--weights", str(weights_file), "--size", "32", "--steps", "8", "--frames", "2",
                 "--curve-points", "2", "--layers", "inception5b"])
    assert code == 1
    assert f"skipped {absent}: no such file" in capsys.readouterr().err
    item = _folders(out)[str(photo)]
    summary = json.loads((item / "summary.json").read_text())
    # a user's weights file names its classes by index (no --labels): nothing claims ImageNet names
    assert summary["domain"] == "vision" and summary["target"].startswith("class ")
    assert summary["weights"] == str(weights_file) and summary["random_weights"] is None
    assert np.loadtxt(item / "importance_ig.csv", delimiter=",").shape == (32, 32)
    for picture in ("ig_paper.png", "ig_overlay.png", "figure4.png"):
        with Image.open(item / picture) as image:
            image.load()
