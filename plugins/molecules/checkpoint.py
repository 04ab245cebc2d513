"""Saving and loading trained weave models: weights as safetensors, the rest as JSON.

A checkpoint is two files with one stem, ``NAME.safetensors`` and ``NAME.json``.
Nothing is unpickled. The JSON names the featurization (with its fingerprint),
so data featurized any other way is refused with a clear error.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from igkit.errors import IGInputError

from .batching import pack, size_batches
from .featurize import Featurization, MolGraph
from .weave import WeaveConfig, WeaveNet, parse_arch, score_function

MODELS_DIR = Path(__file__).resolve().parent / "models"
#: the model shipped with the package: a W2N2 trained on "contains a benzene ring"
DEFAULT_MODEL = MODELS_DIR / "benzene_w2n2"
FORMAT = "igkit-molecules-weave/1"


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
        if task is None:
            return 0
        if isinstance(task, int) or str(task).isdigit():
            k = int(task)
            if not 0 <= k < len(self.tasks):
                raise IGInputError(f"task {k} is out of range: the model has tasks {self.tasks}")
            return k
        if task not in self.tasks:
            raise IGInputError(f"the model has no task {task!r}; its tasks are {', '.join(self.tasks)}")
        return self.tasks.index(task)


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``NAME``, ``NAME.safetensors`` or ``NAME.json`` → both file paths."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save_model(model: MoleculeModel, path: str | Path) -> Path:
    """Write ``NAME.safetensors`` and ``NAME.json``; returns the weights file."""
    weights, config = checkpoint_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    save_file(state, str(weights), metadata={"format": FORMAT})
    document = {"format": FORMAT, "featurization": model.featurization.config(),
                "network": model.net.config.to_dict(), "info": model.info}
    config.write_text(json.dumps(document, indent=2) + "\n")
    model.path = weights.with_suffix("")
    return weights


def load_model(path: str | Path | None = None) -> MoleculeModel:
    """Load a checkpoint (default: the model shipped with igkit) in eval mode."""
    weights, config = checkpoint_paths(path if path is not None else DEFAULT_MODEL)
    for f in (weights, config):
        if not f.is_file():
            raise IGInputError(f"model file {f} not found; give the NAME of a checkpoint written by "
                               f"`igkit molecules train --out NAME` (NAME.safetensors + NAME.json)")
    try:
        document = json.loads(config.read_text())
    except json.JSONDecodeError as exc:
        raise IGInputError(f"{config} is not valid JSON: {exc}") from exc
    if document.get("format") != FORMAT:
        raise IGInputError(f"{config} is not an igkit molecules checkpoint (format "
                           f"{document.get('format')!r}, expected {FORMAT!r})")
    featurization = Featurization.from_config(document["featurization"])
    net_config = WeaveConfig(**document["network"])
    if (net_config.atom_features, net_config.pair_features) != (
            len(featurization.atom_feature_names), len(featurization.pair_feature_names)):
        raise IGInputError(f"{config}: the network expects {net_config.atom_features} atom and "
                           f"{net_config.pair_features} pair features but the featurization makes "
                           f"{len(featurization.atom_feature_names)} and "
                           f"{len(featurization.pair_feature_names)}")
    net = WeaveNet(net_config)
    net.load_state_dict(load_file(str(weights)))
    net.eval()
    return MoleculeModel(net, featurization, document.get("info", {}), weights.with_suffix(""))


def new_model(featurization: Featurization, arch: str = "w2n2", tasks: list[str] | None = None,
              task_type: str = "classification", **sizes: int) -> MoleculeModel:
    """An untrained model whose input sizes match ``featurization``."""
    n_weave, n_dense = parse_arch(arch)
    config = WeaveConfig(atom_features=len(featurization.atom_feature_names),
                         pair_features=len(featurization.pair_feature_names), n_weave=n_weave,
                         n_dense=n_dense, tasks=list(tasks or ["label"]), task_type=task_type, **sizes)
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
