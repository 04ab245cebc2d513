"""The shipped handwritten-digit classifier (``--model digits``): a small CNN trained on
scikit-learn's 8×8 digits, upsampled to 32×32, so the vision domain and the web app show a
*trained* model's attributions offline, in a second, without ImageNet weights.

Pictures are light digits on a dark background (as the training data), so the black baseline
is "no ink" and integrated gradients say which strokes made the class. The weights ship as
safetensors with a JSON config beside them (nothing unpickled); ``python -m
igkit.plugins.vision.train_digits`` rebuilds both.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from igkit import ModelError
from igkit.io.checkpoint import Field, validate_config

NAME = "digits"
#: side of the square pictures the network sees (the 8×8 digits upsampled)
SIDE = 32
CLASSES = [str(d) for d in range(10)]
#: pixels in [0, 1] are normalised to about [-1, 1] inside the model's forward
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
#: what the config may hold, checked before any network is built (a damaged file must not allocate)
CONFIG_SCHEMA = {"width": Field("int", 1, 1024, optional=True), "classes": Field("strings", 1, 10_000, optional=True)}


def models_dir() -> Path:
    """Where the shipped weights and config live (package data)."""
    return Path(__file__).resolve().parent / "models"


def weights_file() -> Path:
    return models_dir() / "digits.safetensors"


def config_file() -> Path:
    return models_dir() / "digits.json"


class DigitsNet(nn.Module):
    """Three conv blocks and a linear head; ``nn.ReLU`` modules so guided backpropagation works,
    named blocks so Grad-CAM (``block3``) and the layer-saturation curves find them."""

    def __init__(self, width: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.block3 = nn.Sequential(nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(16 * 4 * width, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block3(self.block2(self.block1(x))))


def read_config(path: Path | None = None) -> dict[str, Any]:
    """The shipped model's config (architecture width, classes, how it was trained, its test accuracy)."""
    path = path or config_file()
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelError(f"the digits model's config {path} is missing or damaged ({exc}); rebuild it with "
                         f"python -m igkit.plugins.vision.train_digits") from None
    return validate_config(config, CONFIG_SCHEMA, path)


def build(config: dict[str, Any] | None = None) -> DigitsNet:
    """The architecture of ``config`` (default: the shipped one), with PyTorch's initial weights."""
    config = config or read_config()
    return DigitsNet(width=int(config.get("width", 16)), classes=len(config.get("classes", CLASSES)))


def load_shipped() -> tuple[DigitsNet, dict[str, Any]]:
    """The trained network and its config, read without unpickling."""
    from safetensors.torch import load_file

    config = read_config()
    module = build(config)
    path = weights_file()
    if not path.is_file():
        raise ModelError(f"the digits model's weights {path} are missing; rebuild them with "
                         f"python -m igkit.plugins.vision.train_digits")
    module.load_state_dict(load_file(str(path)))
    return module.eval(), config
