"""A task with a known answer: the class of a picture is the colour of a small patch at a random
place on a dark noisy background. A small CNN trained here (any ``nn.Module`` through the Python
API) must satisfy completeness at default settings, and IG must put more of its mass inside the
deciding patch than gradients at the image do; ``evaluate`` must report the same from files."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import igkit
from igkit import fraction_inside
from igkit.plugins.vision import AblationSettings, VisionModel, evaluate_folder
from igkit.plugins.vision.tasks import CLASSES, PATCH, SIDE, make_images, train_patch_model


@pytest.fixture(scope="module")
def trained() -> VisionModel:
    """The patch CNN (:func:`igkit.plugins.vision.tasks.train_patch_model`: 3 conv layers, 200 Adam
    steps on 2048 pictures, a quarter without a patch and a uniform target)."""
    return train_patch_model(seed=0)


@pytest.fixture(scope="module")
def held_out():
    return make_images(16, torch.Generator().manual_seed(2))


def test_the_cnn_solves_the_task(trained, held_out):
    x, y, _ = held_out
    with torch.no_grad():
        assert (trained.logits(x).argmax(1) == y).float().mean() == 1.0


NO_PICTURES = {"frames": 2, "curve_points": 2, "layers": []}


def _explain_all(model, x, integration=None, **settings):
    """Every picture of ``x`` through igkit's runner (the Python API of the vision domain)."""
    found = igkit.explain("vision", list(x), model=model, integration=integration, **{**NO_PICTURES, **settings})
    assert not found.skipped and len(found) == len(x)
    return found.explanations


def test_completeness_within_one_percent_at_default_settings(trained, held_out):
    x, _, _ = held_out
    for explanation in _explain_all(trained, x[:6]):
        assert explanation.ig.method == "adaptive_simpson"
        assert float(explanation.ig.completeness_error[0]) <= 0.01


def test_ig_puts_more_mass_in_the_deciding_patch_than_gradients(trained, held_out):
    x, y, masks = held_out
    ig, grad = [], []
    explanations = _explain_all(trained, x, {"steps": 32})
    for explanation, mask, label in zip(explanations, masks, y):
        assert explanation.target.index == int(label)  # input order kept
        ig.append(fraction_inside(explanation.importance().numpy(), mask.numpy()))
        grad.append(fraction_inside(explanation.gradient_importance().numpy(), mask.numpy()))
    ig, grad = np.array(ig), np.array(grad)
    patch_share = PATCH ** 2 / SIDE ** 2
    assert ig.mean() > grad.mean() + 0.1, (ig.mean(), grad.mean())
    assert (ig > grad).sum() >= 12  # of 16 pictures
    assert ig.mean() > 5 * patch_share  # far more than a uniform spread would give


def test_images_explained_together_equal_images_explained_alone(trained, held_out):
    x, _, _ = held_out
    together = _explain_all(trained, x[:5], {"steps": 8})  # max_group 4: one call of 4, one of 1
    for i in (0, 3, 4):
        (alone,) = _explain_all(trained, x[i:i + 1], {"steps": 8})
        assert torch.allclose(together[i].attributions(), alone.attributions(), atol=1e-6)


def test_a_label_other_than_the_prediction_gets_ig_for_both(trained, held_out):
    x, y, _ = held_out
    other = (int(y[0]) + 1) % len(CLASSES)
    (explanation,) = _explain_all(trained, x[:1], label=CLASSES[other])
    assert explanation.misclassified and explanation.target.index == other
    assert explanation.predicted.index == int(y[0])
    second = explanation.ig_predicted
    assert second.method == explanation.ig.method == "adaptive_simpson"  # the same rule for both
    assert float(second.completeness_error[0]) <= 0.01
    assert not torch.allclose(explanation.attributions(0), explanation.attributions(1))


def test_evaluate_finds_the_same_from_files(trained, held_out, tmp_path):
    x, _, masks = held_out
    folder = tmp_path / "patches"
    folder.mkdir()
    rows = ["image,xmin,ymin,xmax,ymax"]
    for i in range(8):
        Image.fromarray((x[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(folder / f"p{i}.png")
        ys, xs = np.nonzero(masks[i].numpy())
        rows.append(f"p{i}.png,{xs.min()},{ys.min()},{xs.max()},{ys.max()}")
    (tmp_path / "boxes.csv").write_text("\n".join(rows) + "\n")
    report = evaluate_folder(trained, [folder], tmp_path / "eval", ablation=AblationSettings(pixels=50, per_step=5),
                             boxes=tmp_path / "boxes.csv", show_progress=False)
    summary = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert summary["images"] == 8 and not report.failed
    for entry in summary["per_image"]:
        assert entry["box_share_of_image"] == pytest.approx(PATCH ** 2 / SIDE ** 2)
    localisation = summary["localisation"]
    assert localisation["mean_fraction_inside"]["integrated_gradients"] > \
        localisation["mean_fraction_inside"]["gradients"]
    # blacking out IG's top pixels (the patch) destroys the score faster than a random order does
    assert summary["mean_aopc"]["integrated_gradients"] > summary["mean_aopc"]["random"]


@pytest.mark.parametrize("baseline, draws", [("blur", 1), ("noise", 3)])
def test_other_baselines_keep_completeness(trained, held_out, baseline, draws):
    """With K noise draws the attributions add up to F(x) minus the mean of F over the draws."""
    x, _, _ = held_out
    (explanation,) = _explain_all(trained, x[:1], baseline=baseline, noise_draws=3)
    result = explanation.ig
    assert result.meta["n_baselines"] == draws
    assert float(result.completeness_error[0]) <= 0.01


def test_batch_size_bounds_the_passes_not_the_answer(trained, held_out):
    x, _, _ = held_out
    results = [_explain_all(trained, x[1:2], {"steps": 12, "batch_size": b})[0] for b in (None, 5)]
    assert results[1].ig.meta["gradient_evaluations"] == results[0].ig.meta["gradient_evaluations"]
    assert torch.allclose(results[0].attributions(), results[1].attributions(), atol=1e-6)


def test_running_out_of_memory_on_one_image_keeps_the_others(trained, held_out, tmp_path, monkeypatch):
    import igkit.plugins.vision.attribution as attribution

    x, _, _ = held_out
    for i in range(2):
        Image.fromarray((x[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(tmp_path / f"p{i}.png")
    real = attribution.prepare_image

    def first_image_too_big(model, value, options):
        if value.endswith("p0.png"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(model, value, options)

    monkeypatch.setattr(attribution, "prepare_image", first_image_too_big)
    report = igkit.explain_to_folder("vision", [str(tmp_path / "p0.png"), str(tmp_path / "p1.png")],
                                     tmp_path / "out", model=trained, integration={"steps": 4}, **NO_PICTURES)
    (skipped,) = report.skipped
    assert skipped["source"] == str(tmp_path / "p0.png") and skipped["kind"] == "resources"
    assert "ran out of memory" in skipped["reason"] and "--batch-size" in skipped["reason"]
    assert [f.name.split("-")[0] for f in report.folders] == ["p1"]
    assert report.exit_code == 1
