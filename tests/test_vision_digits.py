"""The shipped digits classifier: trained (its stated test accuracy holds on the held-out split),
loaded without unpickling, offered by the vision domain as ``--model digits``, and it predicts
the example test digits it ships with."""
from __future__ import annotations

import json

import pytest
import torch

import igkit
from igkit.plugins.vision import digits

EXAMPLES = sorted(digits.models_dir().glob("digit_test_*.png"))


def test_the_shipped_files_are_small_safetensors_with_their_config():
    config = json.loads(digits.config_file().read_text())
    assert digits.weights_file().stat().st_size < 300_000
    assert config["command"] == "python -m igkit.plugins.vision.train_digits"
    assert config["test_size"] == 540 and config["test_accuracy"] >= 0.97
    with open(digits.weights_file(), "rb") as f:  # safetensors: an 8-byte header length, then JSON
        header_length = int.from_bytes(f.read(8), "little")
        assert f.read(1) == b"{" and header_length < 10_000


def test_the_stated_test_accuracy_holds_on_the_held_out_digits():
    pytest.importorskip("sklearn", reason="the digits data come with scikit-learn (pip install 'igkit[app]')")
    from igkit.plugins.vision.train_digits import normalise, split

    module, config = digits.load_shipped()
    _, _, test_x, test_y = split()
    with torch.no_grad():
        measured = float((module(normalise(test_x)).argmax(1) == test_y).double().mean())
    assert measured == pytest.approx(config["test_accuracy"], abs=5e-4)


def test_the_vision_domain_explains_a_test_digit_with_the_trained_model(tmp_path):
    assert [p.name for p in EXAMPLES] == [f"digit_test_{d}.png" for d in (0, 3, 7, 8)]
    found = igkit.explain("vision", [str(p) for p in EXAMPLES], model="digits", frames=2, curve_points=3,
                          layers=[])
    for example, image in zip(EXAMPLES, found):
        digit = example.stem.rsplit("_", 1)[1]
        summary = image.attribution.summary
        assert image.predicted.label == digit, (example.name, image.predictions[:2])
        assert summary["completeness_error"] <= 0.01 + 1e-9
    model = igkit.get_domain("vision").load_model("digits")
    assert not model.random_weights and "test accuracy" in model.weights and model.categories[7] == "7"
    untrained = igkit.get_domain("vision").load_model("digits", weights="random")
    assert untrained.random_weights


def test_a_weights_file_for_the_digits_network_is_loaded_and_a_wrong_one_refused(tmp_path):
    from safetensors.torch import save_file

    from igkit.plugins.vision.models import load_model

    module, _ = digits.load_shipped()
    save_file(module.state_dict(), str(tmp_path / "mine.safetensors"))
    mine = load_model("digits", str(tmp_path / "mine.safetensors"))
    pixels = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(mine.logits(pixels), load_model("digits").logits(pixels))  # the same tensors
    assert mine.weights == str(tmp_path / "mine.safetensors")
    assert mine.random_weights is None  # igkit cannot tell whether a user's file was trained
    (tmp_path / "names.txt").write_text("\n".join(f"digit {d}" for d in range(10)) + "\n")
    assert load_model("digits", str(tmp_path / "mine.safetensors"), labels=str(tmp_path / "names.txt")
                      ).categories[3] == "digit 3"
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(igkit.ModelError, match="do not fit this architecture"):
        load_model("digits", str(tmp_path / "other.safetensors"))
    with pytest.raises(igkit.ModelError, match="not a file"):
        load_model("digits", "IMAGENET1K_V1")


def test_labels_lists_the_digits_classes(capsys):
    from igkit.cli.main import main

    assert main(["vision", "labels", "--model", "digits"]) == 0
    assert capsys.readouterr().out.split() == [token for d in range(10) for token in (str(d), str(d))]
