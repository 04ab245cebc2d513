"""``igkit vision explain | evaluate | labels``: the commands and their options.

``explain`` is igkit's one explain command for the vision domain (the same as ``igkit explain
--domain vision``); ``evaluate`` and ``labels`` are thin commands over the same pieces.
Nothing heavy is imported here: torchvision and matplotlib load when a command runs.
"""
from __future__ import annotations

import argparse

from igkit.cli.commands import add_domain_group, add_integration_arguments, integration_from_args, positive_int

from .domain import DEFAULT_MODEL, VisionDomain
from .settings import add_evaluate_options


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``igkit vision ...`` to the igkit command."""
    domain = VisionDomain()
    commands = add_domain_group(subparsers, domain, help="image classifiers: attributions, animations, "
                                                         "saturation plots, evaluations")

    p = commands.add_parser("evaluate", help="pixel-ablation AOPC and box localisation: IG vs gradients",
                            description="Evaluate IG against gradients at the image, for the top label of "
                                        "each image: AOPC (Figure 5) and the share of attribution inside "
                                        "boxes. Writes evaluation.json/.csv, aopc.png/.csv and, with boxes, "
                                        "localisation.png/.csv into --out.")
    p.add_argument("images", nargs="+", help=domain.items_help)
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--boxes", default=None, help="Pascal-VOC XML folder or CSV (image,xmin,ymin,xmax,ymax); "
                                                 "None: <image stem>.xml beside each image")
    p.add_argument("--ablate-pixels", type=positive_int, default=5000,
                   help="pixels ablated in total (paper: 5000)")
    p.add_argument("--ablate-per-step", type=positive_int, default=100,
                   help="pixels ablated per step (paper: 100)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="torchvision classification model")
    add_evaluate_options(p)
    add_integration_arguments(p, VisionDomain.integration)
    p.set_defaults(func=_cmd_evaluate)

    p = commands.add_parser("score-methods", help="score every attribution method on pictures whose evidence "
                                                  "is known (the patch task)",
                            description="Train a small CNN on the patch task (the class is the colour of a "
                                        "5x5 patch planted on noise), explain held-out pictures with IG and "
                                        "--methods through igkit vision explain (OUT/explain/, with the "
                                        "side-by-side grid), and score each method: pointing game, share "
                                        "inside the patch, deletion/insertion AUC, SIC/AIC (PIC curves). "
                                        "Prints the table; writes scores.csv/.json/.md, "
                                        "scores_per_image.csv and scores.png into --out.")
    p.add_argument("--task", choices=("patch",), default="patch", help="the known-answer task")
    p.add_argument("--images", type=positive_int, default=64, help="held-out pictures scored")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--methods", default=None,
                   help="comma-separated methods besides integrated_gradients (None: every image method: "
                        "saliency, grad_x_input, smoothgrad, interior_gradient, guided_backprop, grad_cam, "
                        "occlusion, expected_gradients, multi_baseline_ig, blur_ig, guided_ig, xrai)")
    p.add_argument("--seed", type=int, default=0, help="training and picture seed")
    p.add_argument("--train-steps", type=positive_int, default=200, help="Adam steps of the patch CNN")
    p.add_argument("--occlusion", choices=("superpixels", "patches"), default="superpixels",
                   help="occlusion units (superpixels need scikit-image)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in OUT/explain")
    add_integration_arguments(p, VisionDomain.integration)
    p.set_defaults(func=_cmd_score_methods)

    p = commands.add_parser("labels", help="list the class names of a model's weights")
    p.add_argument("--model", default=DEFAULT_MODEL, help="torchvision classification model")
    p.set_defaults(func=_cmd_labels)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from igkit import IGInputError

    from .evaluate import AblationSettings, evaluate_folder

    domain = VisionDomain()
    settings = domain.settings(args)
    ablation = AblationSettings(args.ablate_pixels, args.ablate_per_step)
    model = domain.load_model(args.model, **settings)
    report = evaluate_folder(model, args.images, args.out, settings, ablation, boxes=args.boxes,
                             integration=integration_from_args(args, VisionDomain.integration),
                             show_progress=not args.quiet)
    for line in report.headline():
        print(line)
    print(f"evaluated {len(report.images)} image(s) into {args.out}"
          + (f"; {len(report.failed)} skipped (see evaluation.json)" if report.failed else ""))
    if not report.images and not report.failed:
        raise IGInputError(f"no images given; {domain.items_help}")
    return 1 if report.failed else 0


def _cmd_score_methods(args: argparse.Namespace) -> int:
    from .scoring import DEFAULT_METHODS, markdown_table, score_methods

    methods = DEFAULT_METHODS if args.methods is None else [m for m in args.methods.split(",") if m.strip()]
    integration = integration_from_args(args, VisionDomain.integration)
    report = score_methods(args.out, task=args.task, images=args.images, methods=methods, seed=args.seed,
                           train_steps=args.train_steps, overwrite=args.overwrite,
                           integration={k: getattr(integration, k) for k in
                                        ("steps", "method", "tolerance", "max_steps", "batch_size")},
                           show_progress=not args.quiet, occlusion=args.occlusion)
    print(markdown_table(report.rows), end="")
    print(f"wrote scores.csv, scores.json, scores.md, scores_per_image.csv, scores.png and explain/ into {args.out}")
    return 0


def _cmd_labels(args: argparse.Namespace) -> int:
    from torchvision.models import get_model_weights

    from .digits import CLASSES, NAME
    from .models import check_model_name

    if args.model == NAME:  # the shipped digits classifier names its classes itself
        for i, name in enumerate(CLASSES):
            print(f"{i:>4}  {name}")
        return 0
    check_model_name(args.model)
    for i, name in enumerate(get_model_weights(args.model).DEFAULT.meta["categories"]):
        print(f"{i:>4}  {name}")
    return 0
