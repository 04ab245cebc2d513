"""Saving and loading a trained language model as safetensors + JSON, without unpickling.

The JSON holds the vocabulary and configuration; a fingerprint of both is stored
in the JSON *and* in the safetensors metadata, so weights paired with another
vocabulary or configuration are rejected instead of producing garbage.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from igkit.errors import IGInputError

from .model import LMConfig, WordLSTM
from .vocab import Vocabulary

FORMAT = "igkit-text-lm/1"
DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "ptb_small"


@dataclass
class LanguageModel:
    """A trained model with the vocabulary it was trained on and what was measured."""

    model: WordLSTM
    vocab: Vocabulary
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.model.config, self.vocab)


def fingerprint(config: LMConfig, vocab: Vocabulary) -> str:
    """Hash of configuration and ordered vocabulary: what the weights are only valid with."""
    blob = json.dumps(config.to_dict(), sort_keys=True) + vocab.fingerprint()
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def model_paths(path: str | Path) -> tuple[Path, Path]:
    """(weights, config) for ``path`` given as ``NAME``, ``NAME.safetensors`` or ``NAME.json``."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save_language_model(lm: LanguageModel, path: str | Path, dtype: torch.dtype = torch.float16
                        ) -> tuple[Path, Path]:
    """Write ``NAME.safetensors`` (weights in ``dtype``) and ``NAME.json``; return both paths."""
    weights_path, config_path = model_paths(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(dtype).contiguous() for k, v in lm.model.state_dict().items()}
    save_file(tensors, str(weights_path), metadata={"format": FORMAT, "fingerprint": lm.fingerprint})
    document = {"format": FORMAT, "fingerprint": lm.fingerprint, "config": lm.model.config.to_dict(),
                **lm.info, "vocabulary": lm.vocab.words}
    config_path.write_text(json.dumps(document, indent=1) + "\n")
    return weights_path, config_path


def load_language_model(path: str | Path | None = None) -> LanguageModel:
    """The model at ``path`` (default: the shipped PTB model), checked against its own config."""
    weights_path, config_path = model_paths(path or DEFAULT_MODEL)
    for p in (weights_path, config_path):
        if not p.is_file():
            raise IGInputError(f"model file {p} not found; a text model is a NAME.safetensors + "
                               f"NAME.json pair written by `igkit text train`")
    document = _read_config(config_path)
    try:
        config = LMConfig(**document["config"])
        vocab = Vocabulary(document["vocabulary"])
    except (TypeError, KeyError) as exc:
        raise IGInputError(f"{config_path} is not an igkit text model configuration ({exc})") from exc
    expected = fingerprint(config, vocab)
    stored = _weights_fingerprint(weights_path)
    if document.get("fingerprint") != expected or stored != expected:
        raise IGInputError(f"{weights_path.name} (fingerprint {stored}) and {config_path.name} "
                           f"(vocabulary/config fingerprint {expected}) do not belong together: the weights "
                           f"were trained with another vocabulary or configuration; use the pair that "
                           f"`igkit text train` wrote together")
    if config.vocab_size != len(vocab):
        raise IGInputError(f"{config_path} declares {config.vocab_size} words but lists {len(vocab)}")
    model = WordLSTM(config)
    tensors = {k: v.float() for k, v in load_file(str(weights_path)).items()}
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise IGInputError(f"{weights_path} does not match its configuration: {exc}") from exc
    info = {k: v for k, v in document.items() if k not in ("format", "fingerprint", "config", "vocabulary")}
    return LanguageModel(model.eval(), vocab, info)


def check_same_vocabulary(lm: LanguageModel, vocab: Vocabulary, source: str) -> None:
    """Refuse to run a model on ids made with a different vocabulary (silent garbage otherwise)."""
    if lm.vocab.fingerprint() != vocab.fingerprint():
        raise IGInputError(f"the model's vocabulary ({len(lm.vocab)} words, fingerprint "
                           f"{lm.vocab.fingerprint()}) differs from the vocabulary of {source} "
                           f"({len(vocab)} words, fingerprint {vocab.fingerprint()}); "
                           f"use a model trained on that data")


def _read_config(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IGInputError(f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise IGInputError(f"{path} is not an igkit text model (expected format {FORMAT!r})")
    return document


def _weights_fingerprint(path: Path) -> str | None:
    try:
        with safe_open(str(path), framework="pt") as fh:
            return (fh.metadata() or {}).get("fingerprint")
    except (SafetensorError, OSError) as exc:
        raise IGInputError(f"{path} is not a safetensors file ({exc})") from exc
