"""``igkit molecules ...``: explain (the core's one explain command for the molecules domain),
train, saturation, make-task; evaluate and score-methods live in :mod:`.cli_scoring`.

Each command imports its modules when it runs, so ``igkit`` starts without
loading RDKit and matplotlib for other plugins' commands.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


from igkit.cli.commands import add_domain_group, positive_float, positive_int
from igkit.errors import IGInputError

from .cli_scoring import add_scoring_commands, report_problems
from .domain import MoleculesDomain


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    sub = add_domain_group(subparsers, MoleculesDomain(),
                           help="weave networks on molecules: explain, train, saturation, evaluate")
    _add_train(sub)
    _add_saturation(sub)
    _add_make_task(sub)
    add_scoring_commands(sub)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a weave network on a CSV of SMILES and labels")
    p.add_argument("--data", required=True, help="CSV with a SMILES column and label column(s)")
    p.add_argument("--smiles-col", default="smiles", help="column holding the SMILES")
    p.add_argument("--label-col", default="label", help="label column; several comma-separated = multitask")
    p.add_argument("--split-col", default=None, help="column with train/valid/test per row")
    p.add_argument("--id-col", default=None, help="column naming each molecule (default: the row number)")
    p.add_argument("--arch", default=None, help="WxNy as in Kearnes et al.: x weave modules, atom pairs up "
                   "to graph distance y; w2ninf (or w2n∞) keeps all pairs (default w2n2)")
    p.add_argument("--dense-layers", type=int, default=None, help="fully connected layers after the "
                   "readout (default 2); igkit's old 'w2n2' is --arch w2n4 --dense-layers 2")
    p.add_argument("--featurization", choices=("simple", "full"), default="simple",
                   help="atom and pair features: simple (types, bonds, distances) or full (Kearnes et al.'s)")
    p.add_argument("--max-distance", type=int, default=None, help="longest graph distance kept as a pair; "
                   "must agree with --arch (which sets it)")
    p.add_argument("--task-type", choices=("auto", "classification", "regression"), default="auto",
                   help="auto: classification when every label is 0 or 1")
    p.add_argument("--atom-hidden", type=positive_int, default=50, help="units of each atom layer")
    p.add_argument("--pair-hidden", type=positive_int, default=50, help="units of each pair layer")
    p.add_argument("--readout-hidden", type=positive_int, default=128,
                   help="units of the per-atom layer before the Gaussian histogram readout")
    p.add_argument("--dense-hidden", type=positive_int, default=128, help="units of each dense layer after the readout")
    p.add_argument("--epochs", type=positive_int, default=30, help="most training epochs (see --patience)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="molecules per training step")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay (default 0: Adam)")
    p.add_argument("--patience", type=int, default=5, help="epochs without validation gain before stopping")
    p.add_argument("--valid-fraction", type=float, default=0.1, help="share of train used for validation "
                   "when the split column has no valid rows")
    p.add_argument("--seed", type=int, default=0, help="random seed (weights, shuffling, splits)")
    p.add_argument("--out", required=True, help="checkpoint NAME: writes NAME.safetensors and NAME.json")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from .checkpoint import new_model, save_model
    from .featurize import Featurization
    from .train import evaluate_split, fit, load_labelled_csv

    from .weave import DEFAULT_ARCH, DEFAULT_DENSE_LAYERS, parse_arch

    if args.arch is None:
        args.arch = DEFAULT_ARCH if args.max_distance is None else f"w2n{args.max_distance}"
    distance = parse_arch(args.arch)[1]
    if args.max_distance is not None and args.max_distance != distance:
        raise IGInputError(f"--arch {args.arch} keeps pairs up to distance {distance}, --max-distance says "
                           f"{args.max_distance}; in WxNy the y is the pair distance (give "
                           f"--arch w{parse_arch(args.arch)[0]}n{args.max_distance}, and --dense-layers for "
                           f"the layers after the readout)")
    args.max_distance = distance
    if args.dense_layers is None:
        args.dense_layers = DEFAULT_DENSE_LAYERS
    featurization = Featurization(args.featurization, distance)
    labels = [c.strip() for c in args.label_col.split(",") if c.strip()]
    data = load_labelled_csv(args.data, featurization, smiles_col=args.smiles_col, label_cols=labels,
                             split_col=args.split_col, id_col=args.id_col,
                             valid_fraction=args.valid_fraction, task_type=args.task_type, seed=args.seed)
    report_problems(data.problems)
    sizes = {k: len(v) for k, v in data.splits.items()}
    print(f"{data.task_type} on {', '.join(data.tasks)}: " + ", ".join(f"{k} {n}" for k, n in sizes.items()),
          file=sys.stderr)
    import torch

    torch.manual_seed(args.seed)
    model = new_model(featurization, args.arch, data.tasks, data.task_type, dense_layers=args.dense_layers,
                      atom_hidden=args.atom_hidden,
                      pair_hidden=args.pair_hidden, readout_hidden=args.readout_hidden,
                      dense_hidden=args.dense_hidden)
    start = time.perf_counter()
    history = fit(model, data.splits["train"], data.splits["valid"], epochs=args.epochs,
                  batch_size=args.batch_size, lr=args.lr, patience=args.patience, seed=args.seed,
                  weight_decay=args.weight_decay)
    metrics = {name: evaluate_split(model, split) for name, split in data.splits.items()}
    model.info = {"data": str(args.data), "smiles_col": args.smiles_col, "label_cols": labels,
                  "split_col": args.split_col, "sizes": sizes, "skipped_rows": len(data.problems),
                  "seconds": round(time.perf_counter() - start, 1), "metrics": metrics,
                  "history": history,
                  "arguments": {k: v for k, v in vars(args).items()
                                if k not in ("func", "molecules_command", "out")}}
    weights = save_model(model, args.out)
    for name, values in metrics.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
    print(f"saved {weights} and {weights.with_suffix('.json')}")
    return 0


def _add_saturation(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("saturation", help="score and gradient sum along α·x for a set of molecules (Fig. 13)")
    p.add_argument("items", nargs="*", help="SMILES strings or molecule files (or use --input)")
    p.add_argument("--model", default=None, help="checkpoint NAME (default: the shipped benzene-ring W2N2)")
    MoleculesDomain().add_arguments(p)
    p.add_argument("--alphas", type=positive_int, default=21, help="points on the α grid")
    p.add_argument("--limit", type=positive_int, default=25, help="at most this many molecules")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_saturation)


def _cmd_saturation(args: argparse.Namespace) -> int:
    """The explain command's reading and preparing, then the saturation curves of the molecules."""
    from igkit.domain import BadItem

    from .saturation import saturation_curves, write_saturation

    domain = MoleculesDomain()
    settings = domain.settings(args)
    items = domain.read_items(domain.sources(args), **settings)
    model = domain.load_model(args.model, **settings)
    graphs, names = [], []
    for item in items:
        if len(graphs) == args.limit:
            break
        if isinstance(item, BadItem):
            print(f"skipped {item.source}: {item.reason}", file=sys.stderr)
            continue
        try:
            prepared = domain.prepare(model, item.value, **settings)
        except IGInputError as exc:
            print(f"skipped {item.source}: {exc}", file=sys.stderr)
            continue
        graphs.append(prepared.context["graph"])
        names.append(item.name)
    if not graphs:
        raise IGInputError("none of the molecules could be used; give SMILES or --input FILE")
    curves = saturation_curves(model, graphs, task=args.task, score=args.score, alphas=max(2, args.alphas))
    task = model.tasks[model.task_index(args.task)]
    paths = write_saturation(curves, names, Path(args.out), f"{task} {args.score}")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def _add_make_task(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("make-task", help="label molecules by a SMARTS rule (or Crippen logP) into a CSV; "
                       "--task NAME builds a balanced known-answer task")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--task", default=None, help="a named balanced task: benzene, fluoride_carbonyl, "
                       "alkane_carbonyl, chloride_carbonyl, amine_ether_benzene, fluoride_carbonyl_ether")
    which.add_argument("--rule", default=None,
                       help="e.g. 'benzene', 'F AND carbonyl', 'NOT Cl', or 'crippen'")
    p.add_argument("--input", "--pool", dest="input", default=None,
                   help="molecules (.smi/.sdf/.csv, several comma-separated); default: RDKit's "
                   "Data/NCI/first_5K.smi for --rule; for --task and --balanced the shared ZINC set "
                   "(../shared/data/benzene, when present) plus RDKit's NCI set")
    p.add_argument("--smiles-col", default="smiles", help="column holding the SMILES")
    p.add_argument("--id-col", default=None, help="column naming each molecule (default: the row number)")
    p.add_argument("--balanced", action="store_true", help="with --rule: balanced positives and "
                   "negatives as --task does (implied by --task)")
    p.add_argument("--max-positives", type=int, default=1500, help="balanced: at most this many positives")
    p.add_argument("--partial-fraction", type=float, default=0.5, help="balanced: share of negatives "
                   "holding some but not all fragments of an AND rule (default 0.5)")
    p.add_argument("--training-negatives", choices=("clean", "partial"), default=None,
                   help="balanced: 'clean' (default for --task) swaps the training negatives that hold part "
                   "of an AND rule for pool molecules holding none of it, so a model's attributions find "
                   "every fragment (the test split keeps its partial negatives); 'partial' (default for "
                   "--rule --balanced) keeps the benchmark's mix in every split")
    p.add_argument("--counterfactuals", action="store_true", help="AND rules: add, for every training "
                   "positive, negatives with one fragment deleted (the test split is unchanged)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="share of molecules in the test split")
    p.add_argument("--seed", type=int, default=0, help="random seed (weights, shuffling, splits)")
    p.add_argument("--out", required=True, help="CSV to write: mol_id,smiles,label,split")
    p.set_defaults(func=_cmd_make_task)


def _task_records(args: argparse.Namespace):
    from .readers import read_molecules
    from .tasks import RDKIT_MOLECULES, default_pool

    balanced = getattr(args, "task", None) is not None or getattr(args, "balanced", False)
    sources = args.input.split(",") if args.input else (default_pool() if balanced else [RDKIT_MOLECULES])
    records, seen = [], set()
    for source in sources:
        id_col = args.id_col
        if id_col is None and not args.input and str(source).endswith(".csv"):
            id_col = "mol_id"     # the shared ZINC pool names its molecules
        found, problems = read_molecules(source, smiles_col=args.smiles_col, id_col=id_col)
        report_problems(problems)
        for rec in found:    # balanced tasks keep each molecule once, even if two pools hold it
            if not balanced or rec.smiles not in seen:
                seen.add(rec.smiles)
                records.append(rec)
    return records


def _cmd_make_task(args: argparse.Namespace) -> int:
    from .tasks import balanced_selection, make_task, write_task_csv

    task = make_task(args.task or args.rule)
    records = _task_records(args)
    extra = ""
    if args.task is not None or args.balanced:
        chosen, counts = balanced_selection(task, records, max_positives=args.max_positives,
                                            partial_fraction=args.partial_fraction, seed=args.seed)
        pool, records = records, [records[k] for k in chosen]
        extra = (f" ({counts['negative_partial']} negatives hold part of the rule; the pool had "
                 f"{counts['pool_positive']} positives)")
        negatives = args.training_negatives or ("clean" if args.task is not None else "partial")
        if negatives == "clean":
            from .tasks import clean_training_negatives

            records, swapped = clean_training_negatives(task, records, pool, test_fraction=args.test_fraction,
                                                        seed=args.seed)
            extra += f"; {swapped} training negatives holding part of the rule swapped for clean ones"
    counts = write_task_csv(task, records, Path(args.out), test_fraction=args.test_fraction, seed=args.seed,
                            counterfactuals=args.counterfactuals)
    if args.counterfactuals:
        extra += f"; {counts['counterfactual']} counterfactual negatives added to train"
    print(f"wrote {args.out}: {counts['train']} train, {counts['test']} test"
          + (f", {counts['positive']} positive" if task.rule is not None else "") + extra)
    return 0
