"""The other attribution methods in the vision domain (``--methods``): what each gets from the
domain (Grad-CAM's layer, guided backprop's nn.ReLU modules, occlusion's superpixels or patches,
Expected Gradients' reference images, Blur IG's own path), the side-by-side files per image and
for the run (consistent with their CSVs), the known-answer scoring command on a tiny task, and
sheets whose titles are neither clipped nor overlapping.

The model is the patch CNN of :mod:`igkit.plugins.vision.tasks` (trained in ~2 s): the evidence
of each picture is a planted 5×5 patch.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import igkit
from igkit.methods.backprop import grad_cam, guided_backprop
from igkit.methods.blur_ig import blur_ig
from igkit.cli.main import main
from igkit.methods.expected_gradients import expected_gradients
from igkit.methods.occlusion import occlusion
from igkit.plugins.vision.tasks import held_out, train_patch_model

ALL = ["saliency", "grad_x_input", "smoothgrad", "interior_gradient", "guided_backprop", "grad_cam", "occlusion",
       "expected_gradients", "multi_baseline_ig", "blur_ig", "guided_ig", "xrai"]
QUICK = {"frames": 2, "curve_points": 2, "layers": []}


@pytest.fixture(scope="module")
def model():
    return train_patch_model()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """Four held-out pictures as PNG files (the run's images and Expected Gradients' references)."""
    folder = tmp_path_factory.mktemp("patches")
    x, y, masks = held_out(4)
    paths = []
    for i in range(len(x)):
        path = folder / f"p{i}.png"
        Image.fromarray((x[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
        paths.append(path)
    return paths, y, masks


def _pixels(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).float() / 255


@pytest.fixture(scope="module")
def all_methods(model, pictures):
    paths, _, _ = pictures
    found = igkit.explain("vision", [str(p) for p in paths[:2]], model=model, methods=ALL,
                          integration={"steps": 16}, reference=[str(paths[0].parent)], **QUICK)
    assert not found.skipped, found.skipped
    return found.explanations


def test_every_method_runs_through_the_runner_with_a_map_per_image(all_methods):
    for exp in all_methods:
        assert exp.method_names == ALL
        for name in ALL:
            a = exp.method_attributions(name)
            assert a.shape == ((1, 24, 24) if name in ("grad_cam", "xrai") else (3, 24, 24)), name
            assert torch.isfinite(a).all() and a.abs().sum() > 0, name
            assert exp.method_importance(name).shape == (24, 24)


def test_methods_put_the_most_weight_on_the_planted_patch(all_methods, pictures):
    _, _, masks = pictures
    for exp, mask in zip(all_methods, masks):
        for name in ["integrated_gradients", "saliency", "guided_backprop", "grad_cam", "occlusion", "blur_ig",
                     "guided_ig"]:
            importance = exp.method_importance(name).numpy()
            assert mask.numpy().ravel()[importance.argmax()], name  # pointing game


def test_guided_backprop_and_grad_cam_are_the_core_methods_on_the_domain_choices(model, all_methods, pictures):
    paths, _, _ = pictures
    x = _pixels(paths[0]).unsqueeze(0)
    exp = all_methods[0]
    forward = model.scorer("probability")
    expected = guided_backprop(forward, x, target=exp.target.index, model=model.module)
    assert torch.allclose(exp.method_attributions("guided_backprop"), expected[0], atol=1e-7)
    layer = model.module[5]  # the last ReLU: the last 4-D map before the global max pooling
    cam = grad_cam(forward, x, target=exp.target.index, layer=layer, upsample=True)
    assert torch.allclose(exp.method_attributions("grad_cam"), cam[0], atol=1e-7)


def test_blur_ig_takes_its_own_path_whatever_the_baseline(model, pictures):
    """The run's blurred or noise baseline is not passed to Blur IG (it would refuse it) nor to
    occlusion/guided_ig as a stack of draws (they take the first)."""
    paths, _, _ = pictures
    methods = ["blur_ig", "occlusion", "guided_ig", "interior_gradient"]
    for baseline in ("blur", "noise"):
        found = igkit.explain("vision", [str(paths[0])], model=model, methods=methods, baseline=baseline,
                              noise_draws=2, integration={"steps": 8}, **QUICK)
        assert not found.skipped, found.skipped
        exp = found.explanations[0]
        x = _pixels(paths[0]).unsqueeze(0)
        blur = blur_ig(model.scorer("probability"), x, target=exp.target.index, max_sigma=50 * 24 / 224)
        assert torch.allclose(exp.method_attributions("blur_ig"), blur.attributions[0], atol=1e-6)


def test_occlusion_patches_are_the_core_sliding_window_and_superpixels_fall_back(model, pictures, monkeypatch):
    paths, _, _ = pictures
    found = igkit.explain("vision", [str(paths[1])], model=model, methods=["occlusion"], occlusion="patches",
                          occlusion_patch=4, integration={"steps": 4}, **QUICK)
    exp = found.explanations[0]
    x = _pixels(paths[1]).unsqueeze(0)
    expected = occlusion(model.scorer("probability"), x, torch.zeros(1, 1, 3, 24, 24),
                               target=exp.target.index, patch=4)
    assert torch.allclose(exp.method_attributions("occlusion"), expected[0], atol=1e-7)
    # superpixels: every pixel of one SLIC segment shares its value
    superpixels = igkit.explain("vision", [str(paths[1])], model=model, methods=["occlusion"],
                                integration={"steps": 4}, **QUICK).explanations[0]
    values = superpixels.method_attributions("occlusion")
    assert torch.equal(values[0], values[1]) and len(values[0].unique()) < 24 * 24 / 4
    import igkit.plugins.vision.methods as methods

    monkeypatch.setattr(methods, "has_skimage", lambda: False)
    with pytest.warns(igkit.IgkitWarning, match="scikit-image is not installed"):
        fallback = igkit.explain("vision", [str(paths[1])], model=model, methods=["occlusion"],
                                 integration={"steps": 4}, **QUICK).explanations[0]
    patch = max(2, round(24 / 14))
    expected = occlusion(model.scorer("probability"), x, torch.zeros(1, 1, 3, 24, 24),
                               target=exp.target.index, patch=patch)
    assert torch.allclose(fallback.method_attributions("occlusion"), expected[0], atol=1e-7)


def test_expected_gradients_use_the_reference_images(model, all_methods, pictures):
    paths, _, _ = pictures
    references = torch.stack([_pixels(p) for p in paths])
    # the two images shared one call (max_group 4); the core's draws depend on the batch, so compare so
    x = torch.stack([_pixels(p) for p in paths[:2]])
    targets = [exp.target.index for exp in all_methods]
    expected = expected_gradients(model.scorer("probability"), x, references, target=targets)
    for e, exp in enumerate(all_methods):
        assert torch.allclose(exp.method_attributions("expected_gradients"), expected.attributions[e], atol=1e-6)


def test_expected_gradients_without_references_is_a_clear_error_per_image(model, pictures):
    paths, _, _ = pictures
    with Image.open(paths[0]) as picture:            # in memory: no image file to use as a reference
        found = igkit.explain("vision", [picture.convert("RGB")], model=model, methods=["expected_gradients"],
                              integration={"steps": 4}, **QUICK)
    (skipped,) = found.skipped
    assert skipped.kind == "input" and "needs reference images" in skipped.reason


def test_image_files_are_their_own_references_in_python_as_on_the_command_line(pictures):
    paths, _, _ = pictures
    files = [str(p) for p in paths[:2]]
    domain = igkit.get_domain("vision")
    by_api = domain.keyword_settings({}, methods=["expected_gradients"], items=files)
    parser = argparse.ArgumentParser()
    parser.add_argument("items", nargs="*")
    parser.add_argument("--methods", default="")
    domain.add_arguments(parser)
    by_cli = domain.settings(parser.parse_args([*files, "--methods", "expected_gradients"]))
    assert by_api["reference"] == files and by_cli == by_api
    assert domain.keyword_settings({}, methods=["occlusion"], items=files)["reference"] is None


def test_grad_cam_layers_and_guided_backprop_on_torchvision_models():
    from igkit.plugins.vision import load_model
    from igkit.plugins.vision.methods import cam_layer, check_relus

    for name, layer in (("googlenet", "inception5b"), ("resnet18", "layer4"), ("squeezenet1_1", "features")):
        model = load_model(name, "random", size=32)
        assert cam_layer(model, None, None)[0] == layer
    googlenet = load_model("googlenet", "random", size=32)
    with pytest.raises(igkit.IGInputError, match="F.relu"):
        check_relus(googlenet)  # torchvision's googlenet has no nn.ReLU module: said, not silently wrong
    found = igkit.explain("vision", [torch.rand(3, 32, 32)], model=googlenet, methods=["guided_backprop"],
                          integration={"steps": 2}, **QUICK)
    assert "has none" in found.skipped[0].reason and "BasicConv2d" in found.skipped[0].reason
    check_relus(load_model("resnet18", "random", size=32))


def test_explain_command_writes_side_by_side_files_consistent_with_the_csv(model, pictures, tmp_path, monkeypatch):
    """The CLI path with a custom model (monkeypatched loader): per image methods.csv/.json/.png and
    importance CSVs, for the run methods_all.csv and methods_grid.png/.json built from them; the run's
    own images are Expected Gradients' references; a rerun keeps the images and rewrites the grid."""
    from igkit.plugins.vision import domain as vision_domain

    monkeypatch.setattr(vision_domain.VisionDomain, "load_model", lambda self, source, **s: model)
    paths, _, _ = pictures
    out = tmp_path / "out"
    args = ["vision", "explain", *map(str, paths[:3]), "--out", str(out), "--steps", "8", "--frames", "2",
            "--curve-points", "2", "--layers", "", "--methods", "saliency,grad_cam,occlusion,expected_gradients",
            "--quiet"]
    assert main(args) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["reference"] == [str(p) for p in paths[:3]]
    report = json.loads((out / "report.json").read_text())
    folders = [out / e["folder"] for e in report["items"]]
    methods = ["integrated_gradients", "saliency", "grad_cam", "occlusion", "expected_gradients"]
    maps = {}
    for folder in folders:
        for f in ["methods.csv", "methods.json", "methods.png", "importance_grad_cam.csv",
                  "attributions_occlusion.npy"]:
            assert (folder / f).is_file(), (folder, f)
        meta = json.loads((folder / "methods.json").read_text())
        assert meta["methods"] == methods and meta["options"]["grad_cam"]["layer"] == "5"
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["methods"] == methods[1:]
        maps[folder.name] = {m: np.loadtxt(folder / meta["files"][m], delimiter=",") for m in methods}
        occlusion = np.load(folder / "attributions_occlusion.npy")
        assert np.allclose(np.abs(occlusion).sum(0), maps[folder.name]["occlusion"], atol=1e-6)
    grid = json.loads((out / "methods_grid.json").read_text())
    assert grid["methods"] == methods and grid["rows"] == [f.name for f in folders]
    for m in methods:  # one colour scale per method: the 99.5th percentile of that column's CSV maps
        column = np.concatenate([np.clip(maps[f.name][m], 0, None).ravel() for f in folders])
        assert grid["scale_max"][m] == pytest.approx(np.percentile(column, 99.5))
    table = (out / "methods_all.csv").read_text().splitlines()
    assert len(table) == 1 + 3 * len(methods)
    header = table[0].split(",")
    for line in table[1:]:
        row = dict(zip(header, line.split(",")))
        assert float(row["importance_sum"]) == pytest.approx(maps[row["folder"]][row["method"]].sum(), rel=1e-6)
    assert (out / "methods_grid.png").is_file()
    before = (out / "methods_grid.json").read_text()
    assert main(args) == 0
    assert {e["status"] for e in json.loads((out / "report.json").read_text())["items"]} == {"kept"}
    assert (out / "methods_grid.json").read_text() == before


def test_score_methods_on_a_tiny_task(tmp_path, capsys):
    out = tmp_path / "scores"
    assert main(["vision", "score-methods", "--images", "3", "--methods", "saliency,occlusion", "--out", str(out),
                 "--steps", "8", "--occlusion", "patches", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "| integrated_gradients |" in printed and "| random |" in printed
    table = json.loads((out / "scores.json").read_text())["table"]
    rows = {r["method"]: r for r in table}
    assert list(rows) == ["integrated_gradients", "saliency", "occlusion", "random"]
    for r in rows.values():
        for metric in ("pointing_game", "inside", "deletion_auc", "insertion_auc"):
            assert 0 <= r[metric] <= 1, (r["method"], metric)
    assert rows["integrated_gradients"]["pointing_game"] == 1.0
    assert rows["integrated_gradients"]["inside"] > 5 * rows["random"]["inside"]
    assert rows["integrated_gradients"]["deletion_auc"] < rows["random"]["deletion_auc"]
    assert rows["integrated_gradients"]["sic_auc"] > rows["random"]["sic_auc"]
    for f in ("scores.csv", "scores.md", "scores_per_image.csv", "scores.png", "explain/methods_grid.png"):
        assert (out / f).is_file(), f
    assert (out / "scores.md").read_text().count("\n| ") == 1 + len(rows)  # header + one line per method


def test_sheets_have_no_clipped_or_overlapping_titles_and_many_lines_get_styles():
    from igkit.plugins.vision.figures import (Cell, GridRow, Line, Panel, layout_problems, line_panels_figure,
                                              method_grid_figure, picture_row_figure, scatter_figure)
    from igkit.plugins.vision.records import Provenance

    made_by = Provenance("m", "w", True)  # the longest titles: "[RANDOM WEIGHTS] ..."
    lines = [Line(f"picture_with_a_long_name_{i}-0123456789", [0, 0.5, 1], [i, i + 1, 2 * i]) for i in range(12)]
    layer_sheet = line_panels_figure([Panel(f"inception{i}b: cosine distance", "alpha", "cosine distance", lines)
                                      for i in range(8)], "inner-layer saturation over 12 image(s)", made_by)
    aopc = line_panels_figure([Panel("AOPC over 12 image(s)", "perturbation step (100 pixels each)", "AOPC",
                                     lines[:3])], "pixel ablation: integrated gradients vs gradients", made_by)
    localisation = scatter_figure([0.2], [0.3], title="share of importance inside the boxes",
                                  xlabel="gradients at the image", ylabel="integrated gradients", made_by=made_by)
    row = picture_row_figure([Cell("original", np.zeros((8, 8, 3))), Cell("label and score", text="a\nb")],
                             "a label with a long name: integrated gradients vs gradients", made_by)
    row_of_grid = GridRow("p0\nred patch", np.zeros((8, 8, 3)), {"integrated_gradients": np.ones((8, 8))})
    grid = method_grid_figure([row_of_grid],
                              ["integrated_gradients"], "methods side by side, 1 image(s)", made_by,
                              {"integrated_gradients": 1.0}, note="colour: one scale per method")
    for fig in (layer_sheet, aopc, localisation, row, grid):
        assert layout_problems(fig) == []
    # 12 lines: one legend beside the panels naming each, with distinct colour x dash pairs
    (legend,) = layer_sheet.legends
    assert len(legend.get_texts()) == 12
    styles = {(ln.get_color(), ln.get_linestyle()) for ln in layer_sheet.axes[0].get_lines()}
    assert len(styles) == 12
