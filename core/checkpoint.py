"""Models on disk as ``NAME.safetensors`` (tensors) + ``NAME.json`` (everything else).

Nothing is unpickled when loading, and every way a checkpoint can be broken (a
missing half, invalid JSON, a truncated tensor file, missing keys) ends in a
:class:`~igkit.errors.ModelError` that names the file and what to do.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from .errors import ModelError
from .records import read_json, write_bytes, write_json


def checkpoint_paths(name: str | Path) -> tuple[Path, Path]:
    """``(NAME.safetensors, NAME.json)`` for ``NAME``, ``NAME.json`` or ``NAME.safetensors``."""
    base = Path(name)
    if base.suffix in (".safetensors", ".json"):
        base = base.with_suffix("")
    return base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")


def save_checkpoint(name: str | Path, tensors: dict[str, torch.Tensor], config: dict[str, Any]
                    ) -> tuple[Path, Path]:
    """Write both halves (each whole or not at all); returns their paths."""
    from safetensors.torch import save

    weights, meta = checkpoint_paths(name)
    write_bytes(weights, save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}))
    write_json(meta, config)
    return weights, meta


def load_checkpoint(name: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the JSON config of a checkpoint, or a :class:`ModelError` saying why not."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights, meta = checkpoint_paths(name)
    for path in (weights, meta):
        if not path.is_file():
            raise ModelError(f"checkpoint {weights.with_suffix('')} is incomplete: {path} does not exist "
                             f"(a checkpoint is NAME.safetensors plus NAME.json)")
    try:
        config = read_json(meta)
    except Exception as exc:  # InputFileError with the line, or an unreadable file
        raise ModelError(f"checkpoint config {meta} is unreadable: {exc}") from None
    if not isinstance(config, dict):
        raise ModelError(f"checkpoint config {meta} must be a JSON object, not {type(config).__name__}")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"checkpoint weights {weights} are unreadable ({exc}); the file is damaged "
                         f"or not a safetensors file: retrain or copy it again") from None
    return tensors, config


def load_state(module: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str | Path) -> None:
    """Load ``tensors`` into ``module`` strictly, as a :class:`ModelError` when they do not fit."""
    try:
        module.load_state_dict(tensors, strict=True)
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()
        raise ModelError(f"checkpoint {source} does not fit its own config: "
                         f"{first[0] if first else exc} ... (was it written by another igkit version?)"
                         ) from None


def fingerprint_tensors(tensors: dict[str, torch.Tensor]) -> str:
    """A short content hash of named tensors: a model's identity for resuming runs."""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        value = tensors[key].detach().cpu().contiguous()
        digest.update(key.encode())
        digest.update(str(value.dtype).encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes()
                      if value.numel() else b"")
    return digest.hexdigest()[:16]
