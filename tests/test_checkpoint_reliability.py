"""Checkpoint configs validated before anything is allocated (issue 22): negative, zero, string,
non-finite or huge sizes in a molecule or text model's JSON are a ModelError naming the entry and
its allowed range, through the Python API and as one ``igkit: error:`` line on the command line;
sizes in range that do not match the weights are refused after a build on the meta device only."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import igkit.io.checkpoint
from igkit.io.checkpoint import Field, validate_config
from igkit.cli.main import main
from igkit.errors import ModelError
from igkit.plugins.molecules.checkpoint import DEFAULT_MODEL, load_model
from igkit.plugins.text.checkpoint import fingerprint, load_language_model
from igkit.plugins.text.model import LMConfig
from igkit.plugins.text.vocab import Vocabulary
from text_models import save_tiny_language_model


@pytest.fixture
def molecule_checkpoint(tmp_path) -> Path:
    for suffix in (".safetensors", ".json"):
        shutil.copy(DEFAULT_MODEL.with_suffix(suffix), tmp_path / f"m{suffix}")
    return tmp_path / "m"


@pytest.fixture
def real_builds(monkeypatch) -> list[str]:
    """Every network built for real (with memory), as opposed to on the meta device."""
    built: list[str] = []
    original = igkit.io.checkpoint.load_state

    def counting(module, tensors, source):
        built.append(type(module).__name__)
        return original(module, tensors, source)

    monkeypatch.setattr(igkit.io.checkpoint, "load_state", counting)
    return built


def edit_json(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize("field, value, allowed", [
    ("atom_hidden", -5, "from 1 to 4,096"),
    ("pair_hidden", 0, "from 1 to 4,096"),
    ("readout_hidden", "128", "a whole number"),
    ("dense_hidden", 10**9, "from 1 to 4,096"),
    ("n_weave", 2.5, "a whole number from 1 to 16"),
    ("tasks", [], "a list of strings with 1 to 10,000 entries"),
    ("task_type", "clustering", "one of 'classification', 'regression'"),
])
def test_molecule_config_out_of_range_names_the_field(molecule_checkpoint, real_builds, field, value, allowed):
    edit_json(molecule_checkpoint.with_suffix(".json"), lambda d: d["network"].__setitem__(field, value))
    with pytest.raises(ModelError) as err:
        load_model(molecule_checkpoint)
    assert f"network.{field}" in str(err.value) and allowed in str(err.value)
    assert real_builds == []


def test_molecule_sizes_in_range_that_do_not_fit_the_weights_are_refused_on_the_meta_device(
        molecule_checkpoint, real_builds):
    edit_json(molecule_checkpoint.with_suffix(".json"), lambda d: d["network"].update(atom_hidden=4096,
                                                                                         readout_hidden=4096))
    with pytest.raises(ModelError, match="does not fit its own config"):
        load_model(molecule_checkpoint)
    assert real_builds == []  # nothing of the 4096-wide network was allocated
    assert load_model(DEFAULT_MODEL).net.config.atom_hidden < 4096  # the shipped one still loads


def test_a_broken_molecule_config_is_one_error_line_on_the_command_line(molecule_checkpoint, tmp_path, capsys):
    edit_json(molecule_checkpoint.with_suffix(".json"),
              lambda d: d["featurization"].__setitem__("max_distance", -1))
    code = main(["molecules", "explain", "CCO", "--model", str(molecule_checkpoint), "--out",
                 str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("igkit: error:") and err.count("\n") == 1, err
    assert "featurization.max_distance" in err and "from 1 to 64" in err
    assert not (tmp_path / "out" / "report.json").exists()


@pytest.mark.parametrize("field, value, allowed", [
    ("hidden", -1, "from 1 to 8,192"),
    ("layers", 0, "from 1 to 16"),
    ("vocab_size", "12", "a whole number"),
    ("lr", float("nan"), "a finite number"),
    ("dropout", 1.5, "from 0 to 0.99"),
    ("hidden", 10**12, "from 1 to 8,192"),
])
def test_text_config_out_of_range_names_the_field(tmp_path, real_builds, field, value, allowed):
    path = save_tiny_language_model(tmp_path / "lm")
    edit_json(path.with_suffix(".json"), lambda d: d["config"].__setitem__(field, value))
    with pytest.raises(ModelError) as err:
        load_language_model(path)
    assert f"config.{field}" in str(err.value) and allowed in str(err.value)
    assert real_builds == []


def test_text_sizes_in_range_that_do_not_fit_the_weights_are_refused_on_the_meta_device(tmp_path, real_builds):
    path = save_tiny_language_model(tmp_path / "lm")

    def bigger(document):  # a consistent-looking config (fingerprint recomputed) for far larger weights
        document["config"]["hidden"] = 8192
        document["fingerprint"] = fingerprint(LMConfig(**document["config"]), Vocabulary(document["vocabulary"]))
    edit_json(path.with_suffix(".json"), bigger)
    with pytest.raises(ModelError, match="does not fit its own config: embedding.weight"):
        load_language_model(path)
    assert real_builds == []


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "1" * 5000, '{"format": 1} trailing'])
def test_unreadable_config_json_is_a_model_error(molecule_checkpoint, text):
    molecule_checkpoint.with_suffix(".json").write_text(text)
    with pytest.raises(ModelError, match="m.json"):
        load_model(molecule_checkpoint)


def test_the_schema_describes_its_range_and_passes_what_fits():
    schema = {"size": Field("int", 1, 4096), "rate": Field("float", 0, 1, optional=True),
              "names": Field("strings", 1, 3), "distance": Field("int", 1, 64, nullable=True)}
    good = {"size": 64, "names": ["a"], "distance": None}
    assert validate_config(good, schema, "x.json") is good
    with pytest.raises(ModelError, match=r"x.json: size must be a whole number from 1 to 4,096, got True"):
        validate_config({**good, "size": True}, schema, "x.json")
    with pytest.raises(ModelError, match="names is missing"):
        validate_config({"size": 1}, schema, "x.json")
    with pytest.raises(ModelError, match="must be a JSON object, not list"):
        validate_config([], schema, "x.json")


@pytest.mark.parametrize("config, field", [({"width": -3}, "width"), ({"width": 10**9}, "width"),
                                           ({"classes": "0123456789"}, "classes")])
def test_digits_config_out_of_range_names_the_field(tmp_path, config, field):
    from igkit.plugins.vision.digits import read_config

    path = tmp_path / "digits.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ModelError, match=f"{field} must be"):
        read_config(path)
