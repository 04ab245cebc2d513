"""The ``vision`` domain: image files (or folders of them) in, integrated gradients of a
classifier's score along the black-to-image path out, with every picture of the paper's
Inception section per image.

``igkit vision explain`` and ``igkit explain --domain vision`` are this class run by igkit's
runner. Heavy modules (torchvision, matplotlib, this plugin's models and pictures) are
imported inside the methods: ``igkit --help`` loads none of them.
"""
from __future__ import annotations

import argparse
import os
import re
import unicodedata
from pathlib import Path
from typing import Any, Iterable, Sequence

from igkit import Attribution, BadItem, Domain, IGInputError, Integration, Item, Prepared, content_digest

from .choices import BASELINES, DEFAULT_MODEL, POLARITIES, SCORES, UNDERLAYS

#: the side in pixels of the image patches of ``--format parquet`` (``OUT/units/``)
UNIT_PATCH = 16
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--weights``, ``--size``, ``--device`` (``--model`` is the explain command's own)."""
    g = parser.add_argument_group("model")
    g.add_argument("--weights", default=None,
                   help="FILE (state dict: .pth/.pt/.safetensors), a weights name of the model "
                        "(IMAGENET1K_V1), or 'random' (untrained, seeded, marked as such in every output); "
                        "None: the model's ImageNet weights (torch cache, else download)")
    g.add_argument("--labels", default=None, metavar="FILE",
                   help="class names, one per line in the order of the model's outputs (None: the "
                        "official weights' names; a --weights file's classes are named by index)")
    g.add_argument("--size", type=int, default=None,
                   help="crop size in pixels instead of the weights' own (e.g. 224); smaller is faster")
    g.add_argument("--device", default=None, help="torch device: cpu, cuda, cuda:N or mps "
                                                  "(None: cuda if available, else cpu)")


def add_path_arguments(parser: argparse.ArgumentParser, label: bool = True) -> None:
    """What IG explains and where the path starts."""
    g = parser.add_argument_group("path")
    if label:
        g.add_argument("--label", default=None,
                       help="class NAME or INDEX to explain (None: the top prediction); where the "
                            "model's top label differs, Figure 6 compares both")
    g.add_argument("--score", choices=SCORES, default="probability",
                   help="what IG explains: softmax probability (the paper) or the logit")
    g.add_argument("--baseline", choices=BASELINES, default="black", help="where the path starts")
    g.add_argument("--blur-sigma", type=float, default=None,
                   help="blur baseline width in pixels (None: image size / 28)")
    g.add_argument("--noise-draws", type=int, default=4, help="noise baseline: draws averaged")


def add_picture_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("pictures")
    g.add_argument("--frames", type=int, default=20, help="interior-gradient frames (alphas) in the GIF")
    g.add_argument("--curve-points", type=int, default=21, help="alphas on the saturation curves")
    g.add_argument("--layers", default=None,
                   help="comma-separated module names for inner-layer saturation, or '' for none "
                        "(None: the paper's for googlenet, else the last four blocks)")
    g.add_argument("--clip", nargs=2, type=float, default=(0.0, 99.5), metavar=("LOW", "HIGH"),
                   help="percentiles of importance mapped to black and full brightness")
    g.add_argument("--polarity", choices=POLARITIES, default="both",
                   help="overlays: positive (green), negative (red) or both")
    g.add_argument("--underlay", choices=UNDERLAYS, default="grey",
                   help="overlays: what lies under the colours")
    g.add_argument("--shared-scale", action="store_true",
                   help="overlays of the whole run on one colour scale (redrawn when the run ends), so "
                        "colours compare across images; without it each image has its own (overlay.json "
                        "says which)")
    g.add_argument("--outline-top", type=float, default=10.0,
                   help="overlays: outline regions of the top PERCENT of pixels (0: none)")


def add_method_arguments(parser: argparse.ArgumentParser) -> None:
    """What ``--methods`` need from images (see ``methods.py`` and the README)."""
    g = parser.add_argument_group("other methods (--methods)")
    g.add_argument("--cam-layer", default=None,
                   help="grad_cam: module name of the map (None: the model's last conv block, e.g. "
                        "inception5b for googlenet, layer4 for resnet)")
    g.add_argument("--occlusion", choices=("superpixels", "patches"), default="superpixels",
                   help="occlusion: SLIC superpixels (needs scikit-image; else patches, with a warning) "
                        "or square patches, set to the baseline")
    g.add_argument("--occlusion-patch", type=int, default=None,
                   help="occlusion: patch side in pixels (superpixels: about that area); None: side / 14")
    g.add_argument("--reference", action="append", default=None, metavar="PATH",
                   help="expected_gradients, multi_baseline_ig: reference image files or folders "
                        "(repeatable); None: the run's own images")
    g.add_argument("--reference-count", type=int, default=16,
                   help="expected_gradients, multi_baseline_ig: at most this many reference images "
                        "(the first by sorted path)")


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The vision settings (JSON values) of parsed options; options a command lacks keep their default."""
    layers = getattr(args, "layers", None)
    clip = getattr(args, "clip", (0.0, 99.5))
    return {
        "weights": getattr(args, "weights", None), "size": getattr(args, "size", None),
        "device": getattr(args, "device", None), "label": getattr(args, "label", None),
        "labels": getattr(args, "labels", None),
        "score": getattr(args, "score", "probability"), "baseline": getattr(args, "baseline", "black"),
        "blur_sigma": getattr(args, "blur_sigma", None), "noise_draws": getattr(args, "noise_draws", 4),
        "frames": getattr(args, "frames", 20), "curve_points": getattr(args, "curve_points", 21),
        "layers": None if layers is None else [n.strip() for n in layers.split(",") if n.strip()],
        "clip": [float(clip[0]), float(clip[1])], "polarity": getattr(args, "polarity", "both"),
        "underlay": getattr(args, "underlay", "grey"), "outline_top": getattr(args, "outline_top", 10.0),
        **({"shared_scale": True} if getattr(args, "shared_scale", False) else {}),
        "cam_layer": getattr(args, "cam_layer", None), "occlusion": getattr(args, "occlusion", "superpixels"),
        "occlusion_patch": getattr(args, "occlusion_patch", None), "reference": _reference(args),
        "reference_count": getattr(args, "reference_count", 16),
    }


def _reference(args: argparse.Namespace) -> list[str] | None:
    """``--reference``, or the run's own images where expected gradients need references (only
    then: the item list is part of the settings, so a resumed run with more images is refused)."""
    given = getattr(args, "reference", None)
    if given:
        return [str(p) for p in given]
    methods = {m.strip() for m in str(getattr(args, "methods", "") or "").split(",")}
    if methods & {"expected_gradients", "multi_baseline_ig"} and getattr(args, "items", None):
        return [str(p) for p in args.items]
    return None


def vision_settings(**overrides: Any) -> dict[str, Any]:
    """The settings at their command-line defaults, with ``overrides`` (unknown names refused)."""
    parser = argparse.ArgumentParser(add_help=False)
    VisionDomain().add_arguments(parser)
    settings = settings_from_args(parser.parse_args([]))
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        raise IGInputError(f"the vision domain has no setting {unknown[0]!r}; its settings are "
                           f"{', '.join(sorted(settings))}")
    return {**settings, **overrides}


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
    items_help = ("image files (JPEG, PNG, anything Pillow reads) or folders of them (searched "
                  "recursively, in sorted order)")

    # --- options -----------------------------------------------------------------------------
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_model_arguments(parser)
        add_path_arguments(parser)
        add_picture_arguments(parser)
        add_method_arguments(parser)

    def settings(self, args: argparse.Namespace) -> dict[str, Any]:
        settings = settings_from_args(args)
        from .attribution import VisionOptions

        VisionOptions.from_settings(settings)  # a bad --clip or --frames stops before any work
        if settings["occlusion_patch"] is not None and settings["occlusion_patch"] < 1:
            raise IGInputError(f"--occlusion-patch must be at least 1 pixel, got {settings['occlusion_patch']}")
        if settings["reference_count"] < 1:
            raise IGInputError(f"--reference-count must be at least 1, got {settings['reference_count']}")
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
