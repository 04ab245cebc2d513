"""Saving and loading trained weave models: weights as safetensors, the rest as JSON.

A checkpoint is two files with one stem, ``NAME.safetensors`` and ``NAME.json``.
Nothing is unpickled. The JSON names the featurization (with its fingerprint),
so data featurized any other way is refused with a clear error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from igkit.io.checkpoint import Field, build_module, checkpoint_paths, load_checkpoint, save_checkpoint, validate_config
from igkit.errors import IGInputError, ModelError

from .batching import pack, size_batches
from .featurize import SCHEMES, Featurization, MolGraph
from .weave import (ALL_PAIRS_DISTANCE, DEFAULT_ARCH, DEFAULT_DENSE_LAYERS, TASK_TYPES, WeaveConfig, WeaveNet,
                    parse_arch, score_function)

MODELS_DIR = Path(__file__).resolve().parent / "models"
#: the model shipped with the package: a W2N2 trained on "contains a benzene ring"
DEFAULT_MODEL = MODELS_DIR / "benzene_w2n2"
FORMAT = "igkit-molecules-weave/1"
#: what a checkpoint's JSON may hold, checked before its weights are read (sizes far above any
#: trained weave network are refused: a damaged or hand-edited file must not allocate gigabytes)
_WIDTH = Field("int", 1, 4096, optional=True)
NETWORK_SCHEMA = {
    "atom_features": Field("int", 1, 10_000), "pair_features": Field("int", 1, 10_000),
    "n_weave": Field("int", 1, 16, optional=True), "n_dense": Field("int", 0, 16, optional=True),
    "atom_hidden": _WIDTH, "pair_hidden": _WIDTH, "readout_hidden": _WIDTH, "dense_hidden": _WIDTH,
    "tasks": Field("strings", 1, 10_000, optional=True),
    "task_type": Field("str", choices=TASK_TYPES, optional=True),
    "pair_distance": Field("int", 1, ALL_PAIRS_DISTANCE, optional=True, nullable=True),
}
FEATURIZATION_SCHEMA = {"scheme": Field("str", choices=tuple(SCHEMES)),
                        "max_distance": Field("int", 1, ALL_PAIRS_DISTANCE)}


@dataclass
class MoleculeModel:
    """A trained network with the featurization it expects and what it was trained on."""

    net: WeaveNet
    featurization: Featurization
    info: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def tasks(self) -> list[str]:
        return list(self.net.config.tasks)

    def check(self, graph_or_fingerprint: MolGraph | str) -> None:
        """Refuse features made by another featurization than the one the model was trained on."""
        fp = graph_or_fingerprint if isinstance(graph_or_fingerprint, str) else graph_or_fingerprint.fingerprint
        if fp != self.featurization.fingerprint:
            raise IGInputError(
                f"these molecules were featurized differently (fingerprint {fp}) from what the model "
                f"{self.name} was trained on: {self.featurization.describe()}; featurize them with "
                f"the model's featurization (model.featurization)")

    @property
    def name(self) -> str:
        return self.path.name if self.path else self.net.config.arch

    def task_index(self, task: str | int | None) -> int:
        """A task given by name or position (default: the first)."""
        return task_position(self.tasks, task)


def task_position(tasks: list[str], task: str | int | None) -> int:
    """Which of a model's ``tasks`` the user named, by name or position (default: the first);
    shared by every model kind so ``--target`` means the same for weave, chemprop and PyG."""
    if task is None:
        return 0
    if isinstance(task, int) or str(task).isdigit():
        k = int(task)
        if not 0 <= k < len(tasks):
            raise IGInputError(f"task {k} is out of range: the model has tasks {tasks}")
        return k
    if task not in tasks:
        raise IGInputError(f"the model has no task {task!r}; its tasks are {', '.join(tasks)}")
    return tasks.index(task)


def save_model(model: MoleculeModel, path: str | Path) -> Path:
    """Write ``NAME.safetensors`` and ``NAME.json`` (each whole or not at all); returns the weights file."""
    document = {"format": FORMAT, "featurization": model.featurization.config(),
                "network": model.net.config.to_dict(), "info": model.info}
    weights, _ = save_checkpoint(path, model.net.state_dict(), document)
    model.path = weights.with_suffix("")
    return weights


def load_model(path: str | Path | None = None) -> MoleculeModel:
    """Load a checkpoint (default: the model shipped with igkit) in eval mode.

    Every way a checkpoint can be broken (a missing half, invalid JSON, a truncated
    tensor file, another featurization, tensors that do not fit) is a
    :class:`~igkit.errors.ModelError` naming the file.
    """
    name = path if path is not None else DEFAULT_MODEL
    tensors, document = load_checkpoint(name, validate=check_document)
    weights, config = checkpoint_paths(name)
    try:
        net_config, featurization = _network_config(document)
    except KeyError as exc:
        raise ModelError(f"{config} lacks {exc}; it is not a complete igkit molecules checkpoint") from None
    except (IGInputError, TypeError, ValueError) as exc:
        raise ModelError(f"{config}: {exc}") from None
    net = build_module(lambda: WeaveNet(net_config), tensors, weights)
    net.eval()
    return MoleculeModel(net, featurization, document.get("info", {}), weights.with_suffix(""))


def check_document(document: dict[str, Any], config: Path) -> None:
    """The JSON half of a checkpoint, checked entry by entry (:class:`ModelError` naming the entry)."""
    if document.get("format") != FORMAT:
        raise ModelError(f"{config} is not an igkit molecules checkpoint (format "
                         f"{str(document.get('format'))[:60]!r}, expected {FORMAT!r})")
    for section, schema in (("network", NETWORK_SCHEMA), ("featurization", FEATURIZATION_SCHEMA)):
        if section not in document:
            raise ModelError(f"{config} lacks {section!r}; it is not a complete igkit molecules checkpoint")
        validate_config(document[section], schema, config, f"{section}.")
    if not isinstance(document.get("info", {}), dict):
        raise ModelError(f"{config}: info must be a JSON object")


def _network_config(document: dict[str, Any]) -> tuple[WeaveConfig, Featurization]:
    featurization = Featurization.from_config(document["featurization"])
    network = dict(document["network"])
    if network.get("pair_distance") is None:      # written before WxNy meant the pair distance
        network["pair_distance"] = featurization.max_distance
    net_config = WeaveConfig(**network)
    if (net_config.atom_features, net_config.pair_features) != (
            len(featurization.atom_feature_names), len(featurization.pair_feature_names)):
        raise IGInputError(f"the network expects {net_config.atom_features} atom and "
                           f"{net_config.pair_features} pair features but the featurization makes "
                           f"{len(featurization.atom_feature_names)} and "
                           f"{len(featurization.pair_feature_names)}")
    return net_config, featurization


def featurization_for(arch: str = DEFAULT_ARCH, scheme: str = "simple") -> Featurization:
    """The featurization an architecture name implies: WxNy keeps pairs up to graph distance y."""
    return Featurization(scheme, parse_arch(arch)[1])


def new_model(featurization: Featurization | str, arch: str = DEFAULT_ARCH, tasks: list[str] | None = None,
              task_type: str = "classification", dense_layers: int = DEFAULT_DENSE_LAYERS,
              **sizes: int) -> MoleculeModel:
    """An untrained WxNy model (x weave modules, pairs up to distance y) with ``dense_layers``
    fully connected layers after the readout. ``featurization`` is a scheme name (the pair
    distance then comes from ``arch``) or a :class:`Featurization` whose ``max_distance`` must be y."""
    n_weave, distance = parse_arch(arch)
    if isinstance(featurization, str):
        featurization = Featurization(featurization, distance)
    if featurization.max_distance != distance:
        raise IGInputError(f"architecture {arch} keeps pairs up to distance {distance} but the featurization "
                           f"keeps them up to {featurization.max_distance}; use --arch "
                           f"w{n_weave}n{featurization.max_distance} (WxNy: y is the pair distance; the number "
                           f"of dense layers is --dense-layers)")
    config = WeaveConfig(atom_features=len(featurization.atom_feature_names),
                         pair_features=len(featurization.pair_feature_names), n_weave=n_weave,
                         n_dense=dense_layers, tasks=list(tasks or ["label"]), task_type=task_type,
                         pair_distance=distance, **sizes)
    for name, value in config.to_dict().items():  # the limits a checkpoint must keep, before allocating
        problem = NETWORK_SCHEMA[name].problem(value) if name in NETWORK_SCHEMA else None
        if problem:
            option = {"n_weave": "the x of --arch WxNy", "n_dense": "--dense-layers"}.get(
                name, f"--{name.replace('_', '-')}")
            raise IGInputError(f"{option} {value!r} is out of range: it {problem}")
    return MoleculeModel(WeaveNet(config), featurization)


def predict(model: MoleculeModel, graphs: list[MolGraph], batch_size: int = 128,
            score: str = "probability") -> torch.Tensor:
    """Scores ``[n, tasks]`` for featurized molecules, in the input order."""
    if not graphs:
        return torch.zeros(0, len(model.tasks))
    model.check(graphs[0])
    forward = score_function(model.net, score)
    out = torch.zeros(len(graphs), len(model.tasks))
    model.net.eval()
    with torch.no_grad():
        for idx in size_batches(graphs, batch_size):
            batch = pack([graphs[i] for i in idx])
            out[idx] = forward(*batch.inputs, *batch.structure)
    return out
