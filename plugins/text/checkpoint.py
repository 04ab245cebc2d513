"""A trained language model on disk: ``NAME.safetensors`` (weights) + ``NAME.json`` (the rest).

Written and read with :mod:`igkit.io.checkpoint` (nothing is unpickled; a missing half, invalid
JSON or damaged weights is a :class:`~igkit.errors.ModelError` naming the file). The JSON holds
the configuration and vocabulary, a fingerprint of both, and a fingerprint of the weights, so
weights paired with another vocabulary, configuration or JSON are refused instead of producing
garbage. (Checkpoints written before the weights fingerprint carried the config fingerprint in
the safetensors metadata; that is checked instead.)
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from igkit.io.checkpoint import (Field, build_module, checkpoint_paths, fingerprint_tensors, load_checkpoint,
                              save_checkpoint, validate_config)
from igkit.errors import IGInputError, ModelError

from .model import LMConfig, WordLSTM
from .vocab import Vocabulary

FORMAT = "igkit-text-lm/1"
DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "ptb_small"
#: what a text checkpoint's ``config`` may hold, checked before its weights are read (ranges far
#: beyond Zaremba et al.'s large model: a damaged or edited file must not allocate gigabytes)
CONFIG_SCHEMA = {
    "vocab_size": Field("int", 1, 1_000_000, optional=True), "hidden": Field("int", 1, 8192, optional=True),
    "layers": Field("int", 1, 16, optional=True), "dropout": Field("float", 0, 0.99, optional=True),
    "init_scale": Field("float", 0, 10, optional=True), "num_steps": Field("int", 1, 10_000, optional=True),
    "batch_size": Field("int", 1, 100_000, optional=True), "lr": Field("float", 0, 1000, optional=True),
    "lr_decay": Field("float", 0, 1, optional=True), "decay_after": Field("int", 0, 10_000, optional=True),
    "max_grad_norm": Field("float", 0, 1e6, optional=True), "epochs": Field("int", 0, 10_000, optional=True),
}
DOCUMENT_SCHEMA = {"format": Field("str", choices=(FORMAT,)), "fingerprint": Field("str"),
                   "weights_fingerprint": Field("str", optional=True),
                   "vocabulary": Field("strings", 1, 1_000_000)}


@dataclass
class LanguageModel:
    """A trained model with the vocabulary it was trained on and what was measured."""

    model: WordLSTM
    vocab: Vocabulary
    info: dict[str, Any] = field(default_factory=dict)
    #: unknown words already warned about (each is named once per loaded model)
    warned_words: set[str] = field(default_factory=set, repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.model.config, self.vocab)


def fingerprint(config: LMConfig, vocab: Vocabulary) -> str:
    """Hash of configuration and ordered vocabulary: what the weights are only valid with."""
    blob = json.dumps(config.to_dict(), sort_keys=True) + vocab.fingerprint()
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def model_paths(path: str | Path) -> tuple[Path, Path]:
    """(weights, config) for ``path`` given as ``NAME``, ``NAME.safetensors`` or ``NAME.json``."""
    return checkpoint_paths(path)


def save_language_model(lm: LanguageModel, path: str | Path, dtype: torch.dtype = torch.float16
                        ) -> tuple[Path, Path]:
    """Write ``NAME.safetensors`` (weights in ``dtype``) and ``NAME.json``; return both paths."""
    tensors = {k: v.detach().to(dtype).contiguous() for k, v in lm.model.state_dict().items()}
    document = {"format": FORMAT, "fingerprint": lm.fingerprint,
                "weights_fingerprint": fingerprint_tensors(tensors), "config": lm.model.config.to_dict(),
                **lm.info, "vocabulary": lm.vocab.words}
    return save_checkpoint(path, tensors, document)


def load_language_model(path: str | Path | None = None) -> LanguageModel:
    """The model at ``path`` (default: the shipped PTB model), checked against its own config."""
    weights_path, config_path = model_paths(path or DEFAULT_MODEL)
    tensors, document = load_checkpoint(weights_path, validate=check_document)
    try:
        config = LMConfig(**document["config"])
        vocab = Vocabulary(document["vocabulary"])
    except (TypeError, KeyError, IGInputError) as exc:
        raise ModelError(f"{config_path} is not an igkit text model configuration ({exc})") from None
    expected = fingerprint(config, vocab)
    if "weights_fingerprint" in document:
        pairs = document["weights_fingerprint"] == fingerprint_tensors(tensors)
    else:
        pairs = _metadata_fingerprint(weights_path) == expected
    if document.get("fingerprint") != expected or not pairs:
        raise ModelError(f"{weights_path.name} and {config_path.name} (vocabulary/config fingerprint "
                         f"{expected}) do not belong together: the weights were trained with another "
                         f"vocabulary or configuration; use the pair that `igkit text train` wrote together")
    if config.vocab_size != len(vocab):
        raise ModelError(f"{config_path} declares {config.vocab_size} words but lists {len(vocab)}")
    model = build_module(lambda: WordLSTM(config), {k: v.float() for k, v in tensors.items()}, weights_path)
    info = {k: v for k, v in document.items()
            if k not in ("format", "fingerprint", "weights_fingerprint", "config", "vocabulary")}
    return LanguageModel(model.eval(), vocab, info)


def check_document(document: dict[str, Any], config_path: Path) -> None:
    """The JSON half of a text checkpoint, checked entry by entry (:class:`ModelError` naming it)."""
    if document.get("format") != FORMAT:
        raise ModelError(f"{config_path} is not an igkit text model (expected format {FORMAT!r}); a text "
                         f"model is a NAME.safetensors + NAME.json pair written by `igkit text train`")
    validate_config(document, DOCUMENT_SCHEMA, config_path)
    validate_config(document.get("config"), CONFIG_SCHEMA, config_path, "config.")


def check_same_vocabulary(lm: LanguageModel, vocab: Vocabulary, source: str) -> None:
    """Refuse to run a model on ids made with a different vocabulary (silent garbage otherwise)."""
    if lm.vocab.fingerprint() != vocab.fingerprint():
        raise IGInputError(f"the model's vocabulary ({len(lm.vocab)} words, fingerprint "
                           f"{lm.vocab.fingerprint()}) differs from the vocabulary of {source} "
                           f"({len(vocab)} words, fingerprint {vocab.fingerprint()}); "
                           f"use a model trained on that data")


def _metadata_fingerprint(path: Path) -> str | None:
    """The config fingerprint that older checkpoints kept in the safetensors metadata."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:  # readable: load_checkpoint just read it
        return (fh.metadata() or {}).get("fingerprint")
