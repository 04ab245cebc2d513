"""The ``vision`` domain: image files (or folders of them) in, integrated gradients of a
classifier's score along the black-to-image path out, with every picture of the paper's
Inception section per image.

``igkit vision explain`` and ``igkit explain --domain vision`` are this class run by igkit's
runner. Heavy modules (torchvision, matplotlib, this plugin's models and pictures) are
imported inside the methods: ``igkit --help`` loads none of them.
"""
from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import Any, Iterable, Sequence

from igkit import Attribution, BadItem, Domain, IGInputError, Integration, Item, Prepared, content_digest

from .choices import DEFAULT_MODEL
from .settings import VisionSettings

#: the side in pixels of the image patches of ``--format parquet`` (``OUT/units/``)
UNIT_PATCH = 16
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def vision_settings(**overrides: Any) -> dict[str, Any]:
    """The settings at their declared defaults, with ``overrides`` (checked; unknown names refused)."""
    return VisionDomain().keyword_settings(overrides)


def own_references(methods: Sequence[str], items: Sequence[Any]) -> list[str] | None:
    """The run's own image paths where a method needs reference images and none were given (only
    then: the item list is part of the settings, so a resumed run with more images is refused)."""
    paths = [str(item) for item in items if isinstance(item, (str, os.PathLike))]
    if set(methods) & {"expected_gradients", "multi_baseline_ig"} and paths:
        return paths
    return None


#: where each --baseline starts the path, in words for captions
BASELINE_NAMES = {"black": "a black image (the paper's)", "blur": "the image blurred (--blur-sigma)",
                  "noise": "uniform-noise images, attributions averaged (--noise-draws)"}


def target_meaning(index: int, model: Any, settings: dict[str, Any]) -> str:
    """What the explained class is and where its name comes from (honest about user weights)."""
    chosen = "the class given by --label" if settings.get("label") is not None else "the model's top prediction"
    if settings.get("labels"):
        source = f"names from --labels {settings['labels']}"
    elif model.random_weights:
        source = "ImageNet names of the architecture; the weights are untrained, so the class means nothing"
    elif model.categories and model.categories[0] == "class 0":
        source = "classes named by index: give --labels FILE for names"
    else:
        source = "names of the official weights"
    return f"class {index}, {chosen} ({source})"


def readable_name(stem: str) -> str:
    """A file stem as safe ASCII (accents dropped, other characters as ``_``); never empty."""
    ascii_text = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    return _UNSAFE.sub("_", ascii_text).strip("._-") or "image"


class VisionDomain(Domain):
    name = "vision"
    description = "images with torchvision ImageNet classifiers (default googlenet, Inception v1)"
    integration = Integration()  # adaptive, 1%: Inception's saturated softmax defeats fixed steps
    #: images per integration call (adaptive integration keeps each image's path gradients)
    max_group = 4
    settings_class = VisionSettings
    items_help = ("image files (JPEG, PNG, anything Pillow reads) or folders of them (searched "
                  "recursively, in sorted order)")

    # --- options -----------------------------------------------------------------------------
    def complete_settings(self, settings: dict[str, Any], *, model_source: str | None, methods: Sequence[str],
                          items: Sequence[Any]) -> dict[str, Any]:
        """The run's own images as references when none are given; a bad --clip or --blur-sigma
        stops before any work."""
        from .attribution import VisionOptions

        if not settings["reference"]:
            settings = {**settings, "reference": own_references(methods, items)}
        VisionOptions.from_settings(settings)
        return settings

    # --- model -------------------------------------------------------------------------------
    def load_model(self, source: str | None, **settings: Any):
        """``source``: a torchvision model name (default googlenet); ``weights`` as ``--weights``."""
        from .attribution import VisionOptions
        from .models import load_model

        options = VisionOptions.from_settings(settings)
        model = load_model(source or DEFAULT_MODEL, settings.get("weights"), size=settings.get("size"),
                           device=settings.get("device"), labels=settings.get("labels"))
        options.check(model)  # an unknown --label or --layers name fails once, not once per image
        return model

    def model_fingerprint(self, model: Any) -> str:
        fingerprint = getattr(model, "fingerprint", None)
        return fingerprint() if callable(fingerprint) else super().model_fingerprint(model)

    # --- items -------------------------------------------------------------------------------
    def read_items(self, sources: Sequence[Any], **settings: Any) -> Iterable[Item | BadItem]:
        """Files and folders (recursively, sorted); in Python also PIL images and ``[3, H, W]``
        pixel tensors in [0, 1]. A file's digest hashes its bytes (and ``--label``)."""
        from .images import find_images

        label = f"label={settings.get('label')}"
        for number, source in enumerate(sources, start=1):
            if not isinstance(source, (str, os.PathLike)):
                yield _memory_item(number, source, label)
                continue
            path = Path(source)
            if path.is_dir():
                found = False
                for file in find_images(path):
                    found = True
                    yield _file_item(file, label)
                if not found:
                    yield BadItem(str(path), "no image files in this folder or its sub-folders")
            else:
                yield _file_item(path, label)

    def prepare(self, model: Any, value: Any, **settings: Any) -> Prepared:
        from .attribution import VisionOptions, prepare_image

        options = VisionOptions.from_settings(settings)
        prepared = prepare_image(model, value, options)
        prepared.context["settings"] = settings
        prepared.scale = options.score
        prepared.target_meaning = target_meaning(prepared.context["target"].index, model, settings)
        prepared.baseline_name = BASELINE_NAMES[options.baseline.kind]
        return prepared

    def model_name(self, model: Any, source: str | None) -> str:
        return f"{model.name} ({model.weights})"

    def other_scale(self, explanation: Any) -> dict[str, Any] | None:
        from .outputs import other_scale

        return other_scale(explanation)

    def collate(self, group: Sequence[Prepared]) -> Prepared:
        """Images of one size: inputs side by side, baseline stacks ``[K, B, 3, H, W]``."""
        import torch

        first = group[0]
        if len(group) == 1:
            return first
        return Prepared(name=first.name, inputs=torch.cat([p.inputs for p in group]), forward=first.forward,
                        target=torch.tensor([p.target for p in group]),
                        baselines=torch.cat([p.baselines for p in group], dim=1), group=first.group,
                        batch_size=first.batch_size, context=first.context)

    def method_options(self, method: str, batch: Prepared) -> dict[str, Any]:
        """What ``--methods`` need from images: see :mod:`.methods` (Grad-CAM's layer, occlusion's
        superpixels, Expected Gradients' reference images, Blur IG's own path, ...)."""
        from .methods import method_options

        return method_options(method, batch)

    # --- outputs -----------------------------------------------------------------------------
    def explanation(self, attribution: Attribution):
        from .attribution import ImageExplanation

        return ImageExplanation.from_attribution(attribution)

    def summary_fields(self, explanation: Any) -> dict[str, Any]:
        return explanation.summary_fields()

    def units(self, explanation: Any) -> list[dict[str, Any]]:
        """One row per patch of ``UNIT_PATCH`` × ``UNIT_PATCH`` pixels for ``--format parquet`` (a
        row per pixel would be 50,000 per image): the signed IG summed over the patch and the colour
        channels, so the rows add up like the pixels."""
        per_pixel = explanation.attributions(0).sum(0)
        height, width = per_pixel.shape
        rows = []
        for top in range(0, height, UNIT_PATCH):
            for left in range(0, width, UNIT_PATCH):
                patch = per_pixel[top:top + UNIT_PATCH, left:left + UNIT_PATCH]
                rows.append({"unit": len(rows), "label": f"patch y{top}-{top + patch.shape[0] - 1} "
                                                         f"x{left}-{left + patch.shape[1] - 1}",
                             "attribution": float(patch.sum())})
        return rows

    def write_item(self, explanation: Any, folder: Path, *, pictures: bool = True) -> list[str]:
        from .outputs import write_image

        return write_image(explanation, folder, pictures=pictures)

    def write_run(self, out_dir: Path, folders: Sequence[Path], *, pictures: bool = True) -> list[str]:
        from igkit import read_json

        from .compare import write_method_overview
        from .outputs import redraw_on_shared_scale, write_saturation_overview

        run = read_json(out_dir / "run.json") if (out_dir / "run.json").is_file() else {}
        if pictures and run.get("settings", {}).get("shared_scale"):
            redraw_on_shared_scale(folders, out_dir)
        return (write_saturation_overview(folders, out_dir, pictures=pictures)
                + write_method_overview(folders, out_dir, pictures=pictures))


def _file_item(path: Path, label: str) -> Item | BadItem:
    from .images import read_image_bytes

    try:
        data = read_image_bytes(path)
    except IGInputError as exc:
        return BadItem(str(path), str(exc))
    return Item(source=str(path), value=str(path), name=readable_name(path.stem),
                digest=content_digest(data, label))


def _memory_item(number: int, value: Any, label: str) -> Item | BadItem:
    """An image given in Python: a ``[3, H, W]`` tensor of pixels in [0, 1], or a PIL image."""
    import torch

    source = f"argument {number}"
    if isinstance(value, torch.Tensor):
        pixels = value.detach().cpu().contiguous()
        data = pixels.numpy().tobytes() if pixels.dtype != torch.bfloat16 else pixels.float().numpy().tobytes()
        return Item(source, value, f"image{number}",
                    content_digest("tensor", str(tuple(pixels.shape)), str(pixels.dtype), data, label))
    if hasattr(value, "tobytes") and hasattr(value, "mode") and hasattr(value, "size"):  # a PIL image
        return Item(source, value, f"image{number}",
                    content_digest("pil", value.mode, str(value.size), value.tobytes(), label))
    return BadItem(source, f"a {type(value).__name__} is not an image; give a file or folder path, a PIL "
                           f"image or a [3, H, W] tensor of pixels in [0, 1]")
