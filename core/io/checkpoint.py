"""Models on disk as ``NAME.safetensors`` (tensors) + ``NAME.json`` (everything else).

Nothing is unpickled when loading, and every way a checkpoint can be broken (a
missing half, invalid JSON, a truncated tensor file, missing keys, a config whose
sizes are negative, strings or absurd) ends in a :class:`~igkit.errors.ModelError`
that names the file and what to do. Configs are checked against a :class:`Field`
schema before the weights are read, and a network is first built on PyTorch's
``meta`` device (no memory) and compared with the weights, so no config can make
igkit allocate more than the weights file holds.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from igkit.errors import IgkitError, ModelError
from igkit.io.records import read_json, write_bytes, write_json


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


@dataclass(frozen=True)
class Field:
    """What one config entry may hold: ``kind`` "int", "float", "bool", "str" or "strings" (a
    list of strings), an inclusive range (of the value, or of the list's length), or choices."""

    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    optional: bool = False   # may be absent (the reader then uses its default)
    nullable: bool = False   # may be null

    def problem(self, value: Any) -> str | None:
        """Why ``value`` does not fit, as "must be ..." words, else None."""
        if value is None:
            return None if self.nullable else f"must be {self.describe()}"
        if self.choices:
            return None if value in self.choices else f"must be {self.describe()}"
        if self.kind == "strings":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return f"must be {self.describe()}"
            return None if self._in_range(len(value)) else f"must be {self.describe()}"
        fits = {"int": isinstance(value, int) and not isinstance(value, bool),
                "float": isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value),
                "bool": isinstance(value, bool), "str": isinstance(value, str)}[self.kind]
        return None if fits and (self.kind not in ("int", "float") or self._in_range(value)) \
            else f"must be {self.describe()}"

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        words = {"int": "a whole number", "float": "a finite number", "bool": "true or false",
                 "str": "a string", "strings": "a list of strings"}[self.kind]
        if self.low is not None and self.high is not None:
            span = f"{_number(self.low)} to {_number(self.high)}"
        elif self.low is not None or self.high is not None:
            span = f"at least {_number(self.low)}" if self.low is not None else f"at most {_number(self.high)}"
        else:
            return words + (" or null" if self.nullable else "")
        words += f" with {span} entries" if self.kind == "strings" else \
            f" from {span}" if " to " in span else f" {span}"
        return words + (" or null" if self.nullable else "")

    def _in_range(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


def validate_config(config: Any, schema: Mapping[str, Field], source: str | Path, prefix: str = ""
                    ) -> dict[str, Any]:
    """``config`` if it is a JSON object whose entries fit ``schema``, else a :class:`ModelError`
    naming the entry, what it holds and the allowed range. Entries not in ``schema`` pass."""
    where = prefix.rstrip(".") or "the config"
    if not isinstance(config, dict):
        raise ModelError(f"{source}: {where} must be a JSON object, not {type(config).__name__}")
    for name, spec in schema.items():
        if name not in config:
            if spec.optional:
                continue
            raise ModelError(f"{source}: {prefix}{name} is missing; it must be {spec.describe()}")
        problem = spec.problem(config.get(name))
        if problem:
            shown = repr(config[name])
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise ModelError(f"{source}: {prefix}{name} {problem}, got {shown} (is the checkpoint "
                             f"damaged or edited by hand?)")
    return config


def build_module(factory: Callable[[], torch.nn.Module], tensors: dict[str, torch.Tensor],
                 source: str | Path) -> torch.nn.Module:
    """The module ``factory`` makes, with ``tensors`` loaded. It is built on the ``meta`` device
    first (no memory) and its tensor names and shapes compared with ``tensors``, so a config that
    does not match its weights is a :class:`ModelError` before anything large is allocated."""
    with torch.device("meta"):
        shape = factory()
    expected = {k: tuple(v.shape) for k, v in shape.state_dict().items()}
    given = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != given:
        missing = [k for k in expected if k not in given]
        unexpected = [k for k in given if k not in expected]
        reshaped = [f"{k} {given[k]} in the weights, {expected[k]} by the config" for k in expected
                    if k in given and given[k] != expected[k]]
        first = (f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}" if unexpected
                 else reshaped[0])
        raise ModelError(f"checkpoint {source} does not fit its own config: {first} "
                         f"({len(missing)} missing, {len(unexpected)} unexpected, {len(reshaped)} of another "
                         f"shape); was it written by another igkit version, or edited?")
    module = factory()
    load_state(module, tensors, source)
    return module


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _number(value: float | None) -> str:
    return f"{value:,}" if isinstance(value, int) or (isinstance(value, float) and value.is_integer()
                                                       and abs(value) >= 1000) else f"{value:g}"


def load_checkpoint(name: str | Path, validate: Callable[[dict[str, Any], Path], None] | None = None
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the JSON config of a checkpoint, or a :class:`ModelError` saying why not.

    ``validate(config, config_path)`` checks the config before the weights are read."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    weights, meta = checkpoint_paths(name)
    for path in (weights, meta):
        if not path.is_file():
            raise ModelError(f"checkpoint {weights.with_suffix('')} is incomplete: {path} does not exist "
                             f"(a checkpoint is NAME.safetensors plus NAME.json)")
    try:
        config = read_json(meta)
    except IgkitError as exc:  # InputFileError with the line, a pipe, a file too large
        raise ModelError(f"checkpoint config {meta} is unreadable: {exc}") from None
    if not isinstance(config, dict):
        raise ModelError(f"checkpoint config {meta} must be a JSON object, not {type(config).__name__}")
    def unreadable(exc: Exception) -> ModelError:
        return ModelError(f"checkpoint weights {weights} are unreadable ({exc}); the file is damaged "
                          f"or not a safetensors file: retrain or copy it again")

    try:
        with safe_open(str(weights), framework="pt"):  # reads the header only
            pass
    except (SafetensorError, OSError, ValueError) as exc:
        raise unreadable(exc) from None
    if validate is not None:
        validate(config, meta)
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise unreadable(exc) from None
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
