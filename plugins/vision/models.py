"""Image classifiers for attribution: torchvision models by name, the shipped digits network
(:mod:`.digits`), local weight files, or any ``nn.Module`` with its preprocessing. Never a silent
fall-back to random weights."""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import GoogLeNet_Weights, get_model, get_model_weights, list_models

from igkit import IGInputError, ModelError, content_digest
from igkit.io.checkpoint import fingerprint_tensors

from . import digits
from .choices import DEFAULT_MODEL, DIGITS, RANDOM, SCORES
from .preprocessing import Preprocessing
from .records import Provenance

#: the crop sizes ``--size`` accepts: below 32 ImageNet networks pool to nothing; above 1024 one
#: path pass of a batch needs gigabytes (the shipped networks see 224 or 299)
MIN_SIZE, MAX_SIZE = 32, 1024
#: the seed of ``--weights random``: the same untrained model every run, so runs resume
RANDOM_SEED = 0
#: ImageNet class names; used for any 1000-class model whose weights do not name their classes
IMAGENET_CATEGORIES: list[str] = list(GoogLeNet_Weights.IMAGENET1K_V1.meta["categories"])
#: the layers of Figure 12 (mixed3b, mixed4b, mixed4d, mixed5b in the paper's TensorFlow names)
SATURATION_LAYERS = {
    "googlenet": ("inception3b", "inception4b", "inception4d", "inception5b"),
    "inception_v3": ("Mixed_5b", "Mixed_6b", "Mixed_6e", "Mixed_7c"),
}
#: auxiliary classifiers only matter for training; attribution uses the main output
AUX_MODULES = ("aux1", "aux2", "AuxLogits")
#: how torchvision builds its pretrained Inception networks; random and file weights get the same
#: network (PyTorch's default initialisation for random weights)
ARCH_OPTIONS = {
    "googlenet": {"transform_input": True, "aux_logits": False, "init_weights": False},
    "inception_v3": {"transform_input": True, "aux_logits": False, "init_weights": False},
}


@dataclass
class VisionModel:
    """A classifier plus everything attribution needs to know about it.

    ``module`` maps *normalised* images ``[B, 3, H, W]`` to logits; :meth:`logits`
    takes pixels in [0, 1] and normalises first, so paths stay in pixel space.
    ``random_weights`` marks an untrained model in every output.
    """

    module: nn.Module
    preprocessing: Preprocessing
    categories: list[str]
    name: str = "custom"
    weights: str = "user-supplied"
    random_weights: bool | None = False   # None: a weights file, trained or not unknown
    layers: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        self.module.eval()  # path rows must not interact (batch norm in training mode would)
        if not self.layers:
            self.layers = default_layers(self.name, self.module)

    @property
    def device(self) -> torch.device:
        first = next(self.module.parameters(), None)
        return first.device if first is not None else torch.device("cpu")

    def logits(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pre-softmax scores for pixels in [0, 1]."""
        return self.module(self.preprocessing.normalize(pixels))

    def scorer(self, score: str) -> Callable[[torch.Tensor], torch.Tensor]:
        """The function IG differentiates: softmax probability (the paper) or the logit."""
        if score == "probability":
            return lambda pixels: self.logits(pixels).softmax(dim=1)
        if score == "logit":
            return self.logits
        raise IGInputError(f"unknown score {score!r}; choose one of {', '.join(SCORES)}")

    @property
    def provenance(self) -> Provenance:
        """Which model made a picture (its metadata, and the stamp of random weights)."""
        return Provenance(self.name, self.weights, self.random_weights)

    def mark(self, title: str) -> str:
        """A picture title, flagged when the weights are random."""
        return self.provenance.mark(title)

    def fingerprint(self) -> str:
        """A short hash of what the model computes: weights, preprocessing and class names."""
        return content_digest(fingerprint_tensors(self.module.state_dict()),
                              repr(sorted(self.preprocessing.describe().items())), "\n".join(self.categories),
                              self.name, str(self.random_weights))[:16]

    def describe(self) -> dict:
        """Which model and weights produced an output (kept in every JSON file)."""
        return {"model": self.name, "weights": self.weights, "random_weights": self.random_weights,
                "classes": len(self.categories), "preprocessing": self.preprocessing.describe()}


def load_model(name: str | None = DEFAULT_MODEL, weights: str | None = None, *, size: int | None = None,
               device: str | torch.device | None = "cpu", labels: str | None = None) -> VisionModel:
    """A torchvision classifier by name.

    ``weights``: None for the model's default ImageNet weights (torchvision cache or
    download), a weights name such as ``IMAGENET1K_V1``, a local state-dict file
    (``.pth``/``.pt`` or ``.safetensors``), or ``"random"`` for an untrained model.
    ``size`` crops to ``size``×``size`` instead of the weights' own crop; ``device`` None
    picks cuda when available. Random weights are drawn with a fixed seed, so the same
    untrained model comes back every time (and a run with it can be resumed). ``labels``: a file
    of class names, one per line; without it a weights file's classes are named by index
    (``class 3``: igkit cannot know what a user's model was trained on), and its
    ``random_weights`` is None (unknown: igkit cannot tell whether a file was trained).
    """
    name = name or DEFAULT_MODEL
    device = resolve_device(device)
    if name == DIGITS:  # the shipped, trained scikit-learn digits CNN (see digits.py)
        return load_digits_model(weights, size=size, device=device, labels=labels)
    check_model_name(name)
    enum = get_model_weights(name)
    recipe = Preprocessing.from_transforms(enum.DEFAULT.transforms())
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
            raise IGInputError(f"--size {size!r} is out of range: give a whole number of pixels from {MIN_SIZE} "
                               f"(smaller is too small for ImageNet classifiers) to {MAX_SIZE} (larger needs "
                               f"gigabytes per path pass)")
        recipe = recipe.with_size(size)
    if weights is None or weights in enum.__members__:  # names include DEFAULT
        chosen = enum.DEFAULT if weights is None else enum[weights]
        module = _official(name, chosen)
        categories, label = list(chosen.meta["categories"]), f"{name}:{chosen.name}"
    elif weights == RANDOM:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)
            module = get_model(name, weights=None, **ARCH_OPTIONS.get(name, {}))
        categories, label = _categories_for(module), "random (untrained; attributions say nothing about ImageNet)"
    else:
        path = Path(weights)
        if not path.is_file():
            raise ModelError(f"--weights {weights!r} is neither a file nor a weights name of {name} "
                               f"(names: {', '.join(enum.__members__)}; or 'random')")
        module = get_model(name, weights=None, **ARCH_OPTIONS.get(name, {}))
        load_weights_file(module, path)
        categories, label = [f"class {i}" for i in range(len(_categories_for(module)))], str(path)
    if labels is not None:
        from .labels import read_labels_file

        categories = read_labels_file(labels, len(categories))
    for p in module.parameters():
        p.requires_grad_(False)  # IG needs gradients for the input only
    trained_unknown = weights is not None and weights != RANDOM and weights not in enum.__members__
    return VisionModel(module.to(device), recipe, categories, name=name, weights=label,
                       random_weights=None if trained_unknown else weights == RANDOM)


def load_digits_model(weights: str | None = None, *, size: int | None = None,
                      device: str | torch.device | None = "cpu", labels: str | None = None) -> VisionModel:
    """The shipped digits classifier (:mod:`.digits`) as a :class:`VisionModel`.

    ``weights``: None for the shipped trained weights, ``"random"`` for the same network
    untrained (seeded, marked in every output), or a state-dict file of this architecture.
    ``size``: the side the picture is resized to (default 32, as trained); ``labels``: a file of
    ten class names, one per line (default: the digits themselves). As for any weights file,
    igkit cannot tell whether a user's file was trained (``random_weights`` None).
    """
    side = size or digits.SIDE
    recipe = Preprocessing(resize_size=(side, side), crop_size=None, mean=digits.MEAN, std=digits.STD)
    if weights is None:
        module, config = digits.load_shipped()
        label = (f"shipped {digits.weights_file().name} (scikit-learn digits, test accuracy "
                 f"{config.get('test_accuracy')})")
    elif weights == RANDOM:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)
            module = digits.build()
        label = "random (untrained; attributions say nothing about digits)"
    else:
        path = Path(weights)
        if not path.is_file():
            raise ModelError(f"--weights {weights!r} is not a file; the digits model takes no weights names "
                             f"(leave --weights out for the shipped trained weights, or 'random')")
        module = digits.build()
        load_weights_file(module, path)
        label = str(path)
    categories = list(digits.CLASSES)
    if labels is not None:
        from .labels import read_labels_file

        categories = read_labels_file(labels, len(categories))
    for p in module.parameters():
        p.requires_grad_(False)
    unknown = weights not in (None, RANDOM)
    return VisionModel(module.to(resolve_device(device)), recipe, categories, name=digits.NAME, weights=label,
                       random_weights=None if unknown else weights == RANDOM)


def load_weights_file(module: nn.Module, path: Path) -> None:
    """Load a state dict saved with ``torch.save`` or safetensors; nothing is unpickled."""
    dropped = tuple(f"{m}." for m in AUX_MODULES if getattr(module, m, "absent") is None)
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith(dropped)}
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                if k in state and state[k].shape != v.shape]
    if missing or unexpected or reshaped:
        raise ModelError(f"the weights in {path.name} do not fit this architecture: {len(missing)} missing "
                         f"(e.g. {', '.join(missing[:3]) or '-'}), {len(unexpected)} unexpected "
                         f"(e.g. {', '.join(unexpected[:3]) or '-'}), {len(reshaped)} of another shape "
                         f"(e.g. {', '.join(reshaped[:2]) or '-'}); pick the architecture they were trained "
                         f"for (--model on the command line, Architecture in the app)")
    module.load_state_dict(state)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors by name from ``path``; unwraps ``{"state_dict": ...}`` and DataParallel prefixes."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any reader failure is a problem with the user's file
        raise ModelError(f"could not read {path} as a state dict ({type(exc).__name__}: "
                           f"{_first_line(exc)}); save `model.state_dict()` with torch.save or "
                           f"safetensors") from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def default_layers(name: str, module: nn.Module) -> tuple[str, ...]:
    """Layers for inner saturation: the paper's for Inception, else the last 4 blocks before the head."""
    if name in SATURATION_LAYERS:
        return SATURATION_LAYERS[name]
    blocks = [n for n, child in module.named_children() if any(True for _ in child.parameters())]
    return tuple(blocks[:-1][-4:])


def cache_file(url: str) -> Path:
    """Where torchvision's weights API keeps (or would keep) the file at ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _official(name: str, weights) -> nn.Module:
    try:
        return get_model(name, weights=weights)
    except (OSError, RuntimeError, EOFError) as exc:  # URLError is an OSError
        raise ModelError(
            f"the {weights} weights for {name} could be neither found nor fetched: they are not in the "
            f"torch cache ({cache_file(weights.url)}) and downloading {weights.url} failed "
            f"({type(exc).__name__}: {_first_line(exc)}). Download that file on a machine with internet "
            f"and pass it with --weights FILE (or put it in the cache); --weights random gives an "
            f"untrained model, marked as such") from exc


def _categories_for(module: nn.Module) -> list[str]:
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    classes = linears[-1].out_features if linears else len(IMAGENET_CATEGORIES)
    if classes == len(IMAGENET_CATEGORIES):
        return list(IMAGENET_CATEGORIES)
    return [f"class {i}" for i in range(classes)]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch device; None means cuda when available, else cpu. A name torch does
    not know, or a GPU this machine lacks, is an :class:`IGInputError` that says what exists."""
    if isinstance(device, torch.device):
        return device
    if device is None or str(device).strip() in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(str(device).strip())
    except (RuntimeError, ValueError):
        raise IGInputError(f"unknown --device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise IGInputError(f"--device {device}: no CUDA GPU is available here; use --device cpu")
        if chosen.index is not None and chosen.index >= count:
            raise IGInputError(f"--device {device}: this machine has {count} CUDA GPU(s) "
                               f"(cuda:0..cuda:{count - 1})")
    elif chosen.type == "mps" and not torch.backends.mps.is_available():
        raise IGInputError(f"--device {device}: Apple's MPS is not available here; use --device cpu")
    elif chosen.type not in ("cpu", "cuda", "mps"):
        raise IGInputError(f"--device {device}: igkit runs on cpu, cuda or mps, not {chosen.type}")
    return chosen


def check_model_name(name: str) -> None:
    """Refuse names torchvision does not know as classifiers, suggesting the closest."""
    known = list_models(module=torchvision.models)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.4)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known)}"
        raise IGInputError(f"no torchvision classification model named {name!r}; {hint}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
