"""Vision models: the weights API's cache is used, missing weights stop with an error naming
--weights (never a silent fall-back), local files load without unpickling, random weights are
marked in every output."""
from __future__ import annotations

import json
from urllib.error import URLError

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torchvision.models import googlenet

import igkit
from igkit import IGInputError, ModelError
from igkit.cli.main import main
from igkit.plugins.vision.models import cache_file, load_model, read_state_dict, resolve_device
from torchvision.models import GoogLeNet_Weights


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty torch cache and no network: what a user without internet has."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))

    def refuse(url, *args, **kwargs):
        raise URLError("network disabled for this test")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return tmp_path


@pytest.fixture
def photo(tmp_path):
    from skimage import data
    path = tmp_path / "chelsea.jpg"
    Image.fromarray(data.chelsea()).save(path)
    return path


def test_missing_official_weights_stop_with_an_error_naming_weights_option(offline):
    with pytest.raises(ModelError) as err:
        load_model("googlenet")
    message = str(err.value)
    assert "neither found nor fetched" in message and "--weights FILE" in message
    assert str(cache_file(GoogLeNet_Weights.IMAGENET1K_V1.url)) in message


def test_cli_exits_with_the_message_instead_of_random_weights(offline, photo, capsys):
    assert main(["vision", "explain", str(photo), "--out", str(offline / "out")]) == 2
    assert "--weights FILE" in capsys.readouterr().err
    assert not (offline / "out").exists()
    assert main(["explain", "--domain", "vision", str(photo), "--out", str(offline / "out2")]) == 2
    assert "neither found nor fetched" in capsys.readouterr().err


def test_weights_in_the_torch_cache_are_used_without_network(offline):
    reference = googlenet(weights=None, aux_logits=True, init_weights=False, transform_input=True).eval()
    target = cache_file(GoogLeNet_Weights.IMAGENET1K_V1.url)
    target.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), target)  # the official file's layout, aux heads included
    model = load_model("googlenet", size=32)
    assert model.weights == "googlenet:IMAGENET1K_V1" and not model.random_weights
    assert model.module.aux1 is None  # auxiliary heads are dropped for attribution
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.logits(x), reference(model.preprocessing.normalize(x)))
    assert model.categories[281] == "tabby"


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_file_round_trip(tmp_path, suffix):
    source = load_model("googlenet", "random", size=32)
    path = tmp_path / f"weights{suffix}"
    state = {k: v.contiguous() for k, v in source.module.state_dict().items()}
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)  # wrapped, DataParallel
    loaded = load_model("googlenet", str(path), size=32)
    assert loaded.weights == str(path) and not loaded.random_weights
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.logits(x), source.logits(x))


def test_unusable_weight_files_are_refused(tmp_path):
    resnet_state = load_model("resnet18", "random").module.state_dict()
    torch.save(resnet_state, tmp_path / "resnet.pth")
    with pytest.raises(ModelError, match="do not fit this architecture.*trained for \\(--model on the command line"):
        load_model("googlenet", str(tmp_path / "resnet.pth"))
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pth")  # a pickled object
    with pytest.raises(ModelError, match="could not read .* as a state dict"):
        read_state_dict(tmp_path / "pickled.pth")
    (tmp_path / "text.safetensors").write_text("nope")
    with pytest.raises(ModelError, match="could not read"):
        read_state_dict(tmp_path / "text.safetensors")
    with pytest.raises(ModelError, match="neither a file nor a weights name"):
        load_model("googlenet", str(tmp_path / "absent.pth"))


def test_unknown_model_names_get_suggestions():
    with pytest.raises(IGInputError, match="did you mean resnet50"):
        load_model("resnet5", "random")


def test_random_weights_are_marked_in_every_output(tmp_path, photo):
    out = tmp_path / "out"
    code = main(["vision", "explain", str(photo), "--out", str(out), "--weights", "random", "--size", "32",
                 "--steps", "4", "--frames", "2", "--curve-points", "3", "--quiet"])
    assert code == 0
    (entry,) = json.loads((out / "report.json").read_text())["items"]
    item = out / entry["folder"]
    assert entry["folder"].startswith("chelsea-")
    summary = json.loads((item / "summary.json").read_text())
    assert summary["random_weights"] is True and "random" in summary["weights"]
    for name in summary["files"]:
        path = item / name
        if path.suffix == ".json":
            assert json.loads(path.read_text())["random_weights"] is True, name
        if path.suffix == ".png":
            assert Image.open(path).text["igkit-random-weights"] == "true", name
        if path.suffix == ".gif":
            assert b"random" in Image.open(path).info["comment"], name
    for overview in out.glob("*.png"):
        assert Image.open(overview).text["igkit-random-weights"] == "true"


def test_other_torchvision_models_use_their_own_blocks_for_layer_saturation():
    model = load_model("resnet18", "random", size=32)
    assert model.layers == ("layer1", "layer2", "layer3", "layer4")
    (explanation,) = igkit.explain("vision", [torch.rand(3, 32, 32)], model=model, integration={"steps": 2},
                                   frames=2, curve_points=3)
    assert set(explanation.layers) == set(model.layers)
    for curves in explanation.layers.values():
        assert curves["l2"].shape == (1, 3) and float(curves["l2"][0, -1]) == pytest.approx(0, abs=1e-4)


def test_random_weights_are_the_same_every_time_and_other_weights_change_the_fingerprint(tmp_path):
    first, second = load_model("squeezenet1_1", "random"), load_model("squeezenet1_1", "random")
    assert first.fingerprint() == second.fingerprint()  # so a run with random weights resumes
    state = {k: v.clone() for k, v in first.module.state_dict().items()}
    next(iter(state.values())).add_(1.0)
    save_file(state, str(tmp_path / "w.safetensors"))
    assert load_model("squeezenet1_1", str(tmp_path / "w.safetensors")).fingerprint() != first.fingerprint()
    assert load_model("squeezenet1_1", "random", size=64).fingerprint() != first.fingerprint()


def test_devices_are_checked_with_a_message():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda")
    with pytest.raises(IGInputError, match="unknown --device 'gpu0'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(IGInputError, match="no CUDA GPU is available here"):
            resolve_device("cuda")


def test_unknown_layer_names_fail_once_with_the_module_list(tmp_path, photo, capsys):
    code = main(["vision", "explain", str(photo), "--out", str(tmp_path / "out"), "--weights", "random",
                 "--size", "32", "--layers", "inception9z", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no submodule 'inception9z'" in err and "inception3a" in err


def test_labels_command_lists_the_imagenet_classes(capsys):
    assert main(["vision", "labels"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1000 and lines[281].split(None, 1) == ["281", "tabby"]
