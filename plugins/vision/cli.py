"""``igkit vision explain | evaluate | labels``: command-line options and what they run."""
from __future__ import annotations

import argparse
import sys

import torch
from torchvision.models import get_model_weights

from igkit.cli import add_ig_arguments

from .attribution import ExplainSettings, integration_options
from .baselines import BASELINES, BaselineSpec
from .labels import resolve_label
from .models import DEFAULT_MODEL, SCORES, VisionModel, check_model_name, load_model
from .render import POLARITIES, UNDERLAYS, RenderSettings

INTEGRATION_NOTE = ("Integration: unless --steps or --tolerance is given, the path integral is refined "
                    "adaptively until completeness holds within 1% (--tolerance 0.01); --steps N uses the "
                    "fixed --method rule with N points.")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``igkit vision ...`` to the igkit command."""
    vision = subparsers.add_parser("vision", help="image classifiers: attributions, animations, "
                                                  "saturation plots, evaluations")
    commands = vision.add_subparsers(dest="vision_command", metavar="COMMAND", required=True)

    p = commands.add_parser("explain", help="per image: IG, gradients, pictures, saturation plots",
                            description="Explain images (files or folders) with an ImageNet classifier. "
                                        + INTEGRATION_NOTE)
    p.add_argument("images", nargs="+", help="image files (JPEG, PNG, anything Pillow reads) or folders")
    p.add_argument("--out", required=True, help="output folder (one sub-folder per image)")
    p.add_argument("--label", default=None, help="class NAME or INDEX to explain (default: the top "
                                                 "prediction); a different top prediction gets Figure 6")
    _add_model_arguments(p)
    _add_path_arguments(p)
    g = p.add_argument_group("pictures")
    g.add_argument("--frames", type=int, default=20, help="interior-gradient frames (alphas) in the GIF")
    g.add_argument("--curve-points", type=int, default=21, help="alphas on the saturation curves")
    g.add_argument("--layers", default=None, help="comma-separated module names for inner-layer "
                                                  "saturation (default: the paper's for googlenet)")
    g.add_argument("--clip", nargs=2, type=float, default=(0.0, 99.5), metavar=("LOW", "HIGH"),
                   help="percentiles of importance mapped to black and full brightness")
    g.add_argument("--polarity", choices=POLARITIES, default="both",
                   help="overlays: positive (green), negative (red) or both")
    g.add_argument("--underlay", choices=UNDERLAYS, default="grey", help="overlays: what lies under the colours")
    g.add_argument("--outline-top", type=float, default=10.0,
                   help="overlays: outline regions of the top PERCENT of pixels (0: none)")
    p.add_argument("--force", action="store_true", help="redo images whose outputs are already complete")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_ig_arguments(p)
    p.set_defaults(func=_cmd_explain, steps=None)

    p = commands.add_parser("evaluate", help="pixel-ablation AOPC and box localisation: IG vs gradients",
                            description="Evaluate IG against gradients at the image over a folder: AOPC "
                                        "(Figure 5) and the share of attribution inside boxes. "
                                        + INTEGRATION_NOTE)
    p.add_argument("folder", help="folder of images (files and folders are both accepted)", nargs="+")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--boxes", default=None, help="Pascal-VOC XML folder or CSV (image,xmin,ymin,xmax,ymax); "
                                                 "default: <image stem>.xml beside each image")
    p.add_argument("--ablate-pixels", type=int, default=5000, help="pixels ablated in total (paper: 5000)")
    p.add_argument("--ablate-per-step", type=int, default=100, help="pixels ablated per step (paper: 100)")
    _add_model_arguments(p)
    _add_path_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_ig_arguments(p)
    p.set_defaults(func=_cmd_evaluate, steps=None)

    p = commands.add_parser("labels", help="list the class names of a model's weights")
    p.add_argument("--model", default=DEFAULT_MODEL, help="torchvision model name")
    p.set_defaults(func=_cmd_labels)


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default=DEFAULT_MODEL, help="torchvision classification model (default googlenet)")
    g.add_argument("--weights", default=None, help="FILE (state dict: .pth/.pt/.safetensors), a weights name "
                                                   "(IMAGENET1K_V1), or 'random' (untrained, marked as such); "
                                                   "default: the model's ImageNet weights")
    g.add_argument("--size", type=int, default=None, help="crop size in pixels instead of the weights' "
                                                          "(e.g. 224); smaller is faster")
    g.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")


def _add_path_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("path")
    g.add_argument("--score", choices=SCORES, default="probability",
                   help="what IG explains: softmax probability (the paper) or the logit")
    g.add_argument("--baseline", choices=BASELINES, default="black", help="where the path starts")
    g.add_argument("--blur-sigma", type=float, default=None, help="blur baseline width in pixels "
                                                                 "(default: image size / 28)")
    g.add_argument("--noise-draws", type=int, default=4, help="noise baseline: draws averaged")


def model_from_args(args: argparse.Namespace) -> VisionModel:
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return load_model(args.model, args.weights, size=args.size, device=device)


def settings_from_args(args: argparse.Namespace) -> ExplainSettings:
    layers = getattr(args, "layers", None)
    return ExplainSettings(
        score=args.score,
        baseline=BaselineSpec(args.baseline, blur_sigma=args.blur_sigma, noise_draws=args.noise_draws),
        integration=integration_options(args.steps, args.method, args.tolerance, args.max_steps,
                                        args.batch_size),
        frames=getattr(args, "frames", 20), curve_points=getattr(args, "curve_points", 21),
        layers=tuple(n.strip() for n in layers.split(",") if n.strip()) if layers else None)


def _cmd_explain(args: argparse.Namespace) -> int:
    from .explain import explain_images

    settings = settings_from_args(args)
    render = RenderSettings(args.clip[0], args.clip[1], args.polarity, args.underlay, args.outline_top)
    model = model_from_args(args)
    label = resolve_label(args.label, model.categories) if args.label is not None else None
    report = explain_images(model, args.images, args.out, settings, render, label=label, force=args.force,
                            show_progress=not args.quiet)
    return _finish(report.failed, len(report.written), len(report.already_complete), args.out)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import AblationSettings, evaluate_folder

    settings = settings_from_args(args)
    ablation = AblationSettings(args.ablate_pixels, args.ablate_per_step)
    model = model_from_args(args)
    report = evaluate_folder(model, args.folder, args.out, settings, ablation, boxes=args.boxes,
                             show_progress=not args.quiet)
    for line in report.headline():
        print(line)
    return _finish(report.failed, len(report.images), 0, args.out)


def _cmd_labels(args: argparse.Namespace) -> int:
    check_model_name(args.model)
    for i, name in enumerate(get_model_weights(args.model).DEFAULT.meta["categories"]):
        print(f"{i:>4}  {name}")
    return 0


def _finish(failed: dict[str, str], done: int, already: int, out: str) -> int:
    for item, reason in failed.items():
        print(f"skipped {item}: {reason}", file=sys.stderr)
    print(f"wrote {done} image(s) to {out}" + (f"; {already} already complete" if already else "")
          + (f"; {len(failed)} skipped (see report.json)" if failed else ""))
    return 0 if done or already or not failed else 1
