"""Hugging Face causal language models for the text domain: loading offline, and refusing clearly.

A model comes from a ``save_pretrained`` folder, a Hub id already in the local cache (never the
network: ``local_files_only=True``), the shipped ``ptb-gpt2`` name, or the user's own objects
(:func:`causal_lm`). Everything that would make attributions wrong or meaningless is refused
here, with what to do: an encoder or encoder-decoder, a tokenizer without character offsets
(no words), a model spread over devices, half precision (gradients too coarse), weights that do
not match the config, and code shipped with the model (never run unless asked).
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from igkit.errors import IGInputError, IgkitWarning, ModelError

#: the model trained by ``python -m igkit.plugins.text.train_gpt2`` and shipped with igkit
SHIPPED_NAME = "ptb-gpt2"
SHIPPED_FOLDER = Path(__file__).resolve().parent / "models" / "ptb_gpt2"
INSTALL_HINT = 'transformers models need the transformers extra: pip install "igkit[transformers]"'
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass
class CausalLM:
    """A causal language model with its tokenizer, in eval mode, float32, on one device."""

    model: Any
    tokenizer: Any
    name: str
    #: the longest context the model can read (its position embeddings), or None if unbounded
    max_positions: int | None
    #: saved bytes per path point, measured once per shape (see :mod:`.hf_memory`)
    memory_estimates: dict = field(default_factory=dict, repr=False)

    @property
    def device(self) -> Any:
        return self.model.get_input_embeddings().weight.device

    @property
    def embedding(self) -> Any:
        return self.model.get_input_embeddings()

    def token_text(self, token_id: int) -> str:
        """A token as text (byte-level markers decoded: " than", not "Ġthan")."""
        return self.tokenizer.decode([int(token_id)])


def is_transformers_source(source: str | None) -> bool:
    """Whether ``source`` names a transformers model rather than an igkit LSTM checkpoint pair."""
    if source is None:
        return False
    if source == SHIPPED_NAME:
        return True
    path = Path(source)
    if path.is_dir():
        return True
    if path.suffix in (".safetensors", ".json") or path.with_name(path.name + ".json").is_file():
        return False
    return not path.exists() and bool(_HUB_ID.match(source)) and "/" in source


def load_causal_lm(source: str, *, trust_remote_code: bool = False) -> CausalLM:
    """The model and tokenizer named by ``source``, offline, checked (see the module's docstring)."""
    transformers = _require_transformers()
    folder = SHIPPED_FOLDER if source == SHIPPED_NAME else Path(source)
    where = str(folder) if folder.is_dir() else source
    if folder.exists() and not folder.is_dir():
        raise ModelError(f"{source} is a file; a transformers model is a folder written by save_pretrained "
                         f"(config.json and the weights) or a Hub id in the local cache")
    if folder.is_dir() and not (folder / "config.json").is_file():
        raise ModelError(f"{folder} has no config.json: it is not a folder written by save_pretrained")
    try:
        config = transformers.AutoConfig.from_pretrained(where, local_files_only=True,
                                                         trust_remote_code=trust_remote_code)
    except OSError as exc:
        if folder.is_dir():
            raise ModelError(f"cannot read {folder / 'config.json'}: {exc}") from None
        raise ModelError(f"{source!r} is neither a folder nor a model in the local Hugging Face cache. igkit "
                         f"never downloads: on a machine with internet run `hf download {source}` (it fills "
                         f"the cache), or save the model with save_pretrained and pass that folder") from None
    except ValueError as exc:
        if "trust_remote_code" in str(exc) or getattr(config_or_none(where), "auto_map", None):
            raise ModelError(_remote_code_message(source)) from None
        raise ModelError(f"{where}: {exc}") from None
    if getattr(config, "auto_map", None) and not trust_remote_code:
        raise ModelError(_remote_code_message(source))
    check_causal_config(config, where)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(where, local_files_only=True,
                                                               trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"cannot load the tokenizer of {where}: {exc}; the folder needs the tokenizer files "
                         f"that tokenizer.save_pretrained writes (tokenizer.json)") from None
    try:
        model, info = transformers.AutoModelForCausalLM.from_pretrained(
            where, local_files_only=True, trust_remote_code=trust_remote_code, dtype="float32",
            output_loading_info=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelError(f"cannot load the weights of {where}: {_first_line(exc)}; the weights do not match "
                         f"config.json (another model's file?) or are damaged: save the model again") from None
    problems = [f"{kind.replace('_', ' ')}: {', '.join(sorted(map(str, keys))[:5])}"
                for kind, keys in info.items() if kind in ("missing_keys", "mismatched_keys") and keys]
    if problems:
        raise ModelError(f"the weights in {where} do not match its config.json ({'; '.join(problems)}); "
                         f"use the weights saved together with that config")
    return causal_lm(model, tokenizer, name=source)


def config_or_none(where: str) -> Any:
    """The raw config.json as a namespace, without running any of the model's code."""
    import json
    import types

    path = Path(where) / "config.json"
    try:
        return types.SimpleNamespace(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def check_causal_config(config: Any, where: str) -> None:
    """Refuse encoder-only and encoder-decoder models before their weights are read."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    kind = getattr(config, "model_type", "?")
    architectures = getattr(config, "architectures", None) or []
    if getattr(config, "is_encoder_decoder", False):
        raise ModelError(f"{where} is an encoder-decoder model ({kind}, {', '.join(architectures) or 'seq2seq'}); "
                         f"igkit text explains causal language models (GPT-2, Llama, ...) that predict the "
                         f"next token from the tokens before it")
    causal_names = [a for a in architectures if a.endswith(("CausalLM", "LMHeadModel"))]
    if kind not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or (architectures and not causal_names):
        named = ", ".join(architectures) or "no architectures"
        raise ModelError(f"{where} is not a causal language model ({kind}, {named}): an encoder such as BERT "
                         f"reads the whole text in both directions and predicts no next token; "
                         f"use a causal LM (GPT-2, Llama, Mistral, ...)")


def causal_lm(model: Any, tokenizer: Any, *, name: str | None = None) -> CausalLM:
    """Wrap a user's transformers model and tokenizer (the Python API's entry), checked.

    A model in training mode is put in eval mode with a warning (dropout would make every path
    point random); half precision, models spread over several devices and tokenizers that give no
    character offsets are refused with what to do.
    """
    import torch

    if not hasattr(model, "get_input_embeddings") or not hasattr(model, "config"):
        raise IGInputError(f"expected a transformers model (PreTrainedModel), got {type(model).__name__}")
    check_causal_config(model.config, name or type(model).__name__)
    if not getattr(tokenizer, "is_fast", False):
        raise IGInputError(f"the tokenizer {type(tokenizer).__name__} gives no character offsets (it is not a "
                           f"fast tokenizer), so tokens cannot be merged into words; load it with "
                           f"AutoTokenizer.from_pretrained(..., use_fast=True) or save a tokenizer.json")
    devices = set(getattr(model, "hf_device_map", {}).values() or ())
    if len(devices) > 1 or devices & {"disk", "meta"}:
        raise IGInputError(f"the model is spread over {', '.join(map(str, sorted(devices, key=str)))} "
                           f"(device_map): integrated gradients needs every layer's gradient on one device; "
                           f"load it on one device (device_map={{'': 0}} or no device_map)")
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes - {torch.float32, torch.float64}:
        raise IGInputError(f"the model's weights are {', '.join(sorted(str(d) for d in dtypes))}: in half "
                           f"precision the path gradients are too coarse for attributions that add up; "
                           f"call model.float() (or load with dtype=torch.float32) first")
    if model.training:
        warnings.warn("the transformers model was in training mode (dropout would make every path point "
                      "random); igkit put it in eval mode", IgkitWarning, stacklevel=2)
        model.eval()
    config = model.config
    max_positions = next((getattr(config, k) for k in ("n_positions", "max_position_embeddings")
                          if isinstance(getattr(config, k, None), int)), None)
    return CausalLM(model=model, tokenizer=tokenizer, name=name or getattr(config, "_name_or_path", "") or
                    type(model).__name__, max_positions=max_positions)


def as_causal_lm(model: Any) -> CausalLM | None:
    """The :class:`CausalLM` of what the Python API was given (a CausalLM or a (model, tokenizer)
    pair), or None for the LSTM language model."""
    if isinstance(model, CausalLM):
        return model
    if isinstance(model, tuple) and len(model) == 2 and hasattr(model[0], "get_input_embeddings"):
        return causal_lm(*model)
    return None


def _require_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ModelError(INSTALL_HINT) from None
    transformers.logging.set_verbosity_error()  # loading notes and bars would bury igkit's own lines
    transformers.utils.logging.disable_progress_bar()
    return transformers


def _remote_code_message(source: str) -> str:
    return (f"{source} ships its own Python code (auto_map in config.json); igkit never runs a model's code "
            f"silently: read that code, then pass --trust-remote-code (Python: trust_remote_code=True)")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
