"""``igkit molecules ...``: train, explain, saturation, make-task and evaluate."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from igkit.cli import add_ig_arguments, ig_options
from igkit.errors import IGInputError

from .readers import Problem

#: the shared machines have few cores: training and attribution use at most this many threads
MAX_THREADS = 2


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("molecules", help="weave networks on molecules: train, explain, evaluate")
    sub = parser.add_subparsers(dest="molecules_command", metavar="COMMAND", required=True)
    _add_train(sub)
    _add_explain(sub)


def report_problems(problems: list[Problem], stream=sys.stderr) -> None:
    """Tell the user which rows were skipped and why."""
    for p in problems:
        print(f"skipped {p}", file=stream)


def _limit_threads() -> None:
    torch.set_num_threads(min(MAX_THREADS, torch.get_num_threads()))


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a weave network on a CSV of SMILES and labels")
    p.add_argument("--data", required=True, help="CSV with a SMILES column and label column(s)")
    p.add_argument("--smiles-col", default="smiles")
    p.add_argument("--label-col", default="label", help="label column; several comma-separated = multitask")
    p.add_argument("--split-col", default=None, help="column with train/valid/test per row")
    p.add_argument("--id-col", default=None)
    p.add_argument("--arch", default="w2n2", help="WxNy: x weave modules, y dense layers (default w2n2)")
    p.add_argument("--featurization", choices=("simple", "full"), default="simple")
    p.add_argument("--max-distance", type=int, default=4, help="longest graph distance kept as a pair")
    p.add_argument("--task-type", choices=("auto", "classification", "regression"), default="auto")
    p.add_argument("--atom-hidden", type=int, default=50)
    p.add_argument("--pair-hidden", type=int, default=50)
    p.add_argument("--readout-hidden", type=int, default=128)
    p.add_argument("--dense-hidden", type=int, default=128)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--patience", type=int, default=5, help="epochs without validation gain before stopping")
    p.add_argument("--valid-fraction", type=float, default=0.1, help="share of train used for validation "
                   "when the split column has no valid rows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="checkpoint NAME: writes NAME.safetensors and NAME.json")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from .checkpoint import new_model, save_model
    from .featurize import Featurization
    from .train import evaluate_split, fit, load_labelled_csv

    _limit_threads()
    featurization = Featurization(args.featurization, args.max_distance)
    labels = [c.strip() for c in args.label_col.split(",") if c.strip()]
    data = load_labelled_csv(args.data, featurization, smiles_col=args.smiles_col, label_cols=labels,
                             split_col=args.split_col, id_col=args.id_col,
                             valid_fraction=args.valid_fraction, task_type=args.task_type, seed=args.seed)
    report_problems(data.problems)
    sizes = {k: len(v) for k, v in data.splits.items()}
    print(f"{data.task_type} on {', '.join(data.tasks)}: " + ", ".join(f"{k} {n}" for k, n in sizes.items()),
          file=sys.stderr)
    torch.manual_seed(args.seed)
    model = new_model(featurization, args.arch, data.tasks, data.task_type, atom_hidden=args.atom_hidden,
                      pair_hidden=args.pair_hidden, readout_hidden=args.readout_hidden,
                      dense_hidden=args.dense_hidden)
    start = time.perf_counter()
    history = fit(model, data.splits["train"], data.splits["valid"], epochs=args.epochs,
                  batch_size=args.batch_size, lr=args.lr, patience=args.patience, seed=args.seed)
    metrics = {name: evaluate_split(model, split) for name, split in data.splits.items()}
    model.info = {"data": str(args.data), "smiles_col": args.smiles_col, "label_cols": labels,
                  "split_col": args.split_col, "sizes": sizes, "skipped_rows": len(data.problems),
                  "seconds": round(time.perf_counter() - start, 1), "metrics": metrics,
                  "history": history, "command": "igkit " + " ".join(sys.argv[1:])}
    weights = save_model(model, args.out)
    for name, values in metrics.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
    print(f"saved {weights} and {weights.with_suffix('.json')}")
    return 0


def _add_molecule_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("smiles", nargs="*", help="SMILES strings (or use --input)")
    p.add_argument("--input", default=None, help=".smi, .sdf or .csv file of molecules")
    p.add_argument("--smiles-col", default="smiles", help="SMILES column of a CSV input")
    p.add_argument("--id-col", default=None, help="column (CSV) or property (SDF) naming each molecule")
    p.add_argument("--model", default=None, help="checkpoint NAME (default: the shipped benzene-ring W2N2)")
    p.add_argument("--task", default=None, help="task name or index of a multitask model (default: first)")
    p.add_argument("--score", choices=("probability", "logit"), default="probability",
                   help="explain the class probability (default) or the logit")


def _molecule_inputs(args: argparse.Namespace):
    """Records from the command line or --input, plus the rows that could not be parsed."""
    from .api import as_records

    if bool(args.smiles) == bool(args.input):
        raise IGInputError("give SMILES strings or --input FILE (exactly one of them)")
    source = args.input if args.input else args.smiles
    return as_records(source, smiles_col=args.smiles_col, id_col=args.id_col)


def _ig_defaults(args: argparse.Namespace) -> dict:
    """IG options; unless --steps is given, integration adapts until completeness is within 1%."""
    from .attribution import DEFAULT_TOLERANCE

    options = ig_options(args)
    if options["steps"] is None:
        options["steps"] = 50
        if options["tolerance"] is None:
            options["tolerance"] = DEFAULT_TOLERANCE
    return options


def _add_explain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="atom and pair attributions, heatmaps, accounting, dead features")
    _add_molecule_inputs(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--methods", default="", help="extra methods for comparison columns, comma-separated "
                   "(e.g. grad_x_input,saliency)")
    p.add_argument("--no-pictures", action="store_true", help="tables only (faster for many molecules)")
    p.add_argument("--molecules-per-call", type=int, default=32,
                   help="molecules of similar size attributed together in one IG call")
    add_ig_arguments(p)
    p.set_defaults(func=_cmd_explain, steps=None)


def _cmd_explain(args: argparse.Namespace) -> int:
    from .api import featurize_records
    from .attribution import check_methods, explain_graphs
    from .checkpoint import load_model
    from .outputs import write_all

    _limit_threads()
    methods = check_methods([m.strip() for m in args.methods.split(",") if m.strip()])
    model = load_model(args.model)
    records, problems = _molecule_inputs(args)
    records, graphs, more = featurize_records(records, model.featurization)
    explanations, failed = explain_graphs(model, records, graphs, task=args.task, score=args.score,
                                          methods=methods, molecules_per_call=args.molecules_per_call,
                                          show_progress=True, **_ig_defaults(args))
    problems = problems + more + failed
    report_problems(problems)
    write_all(explanations, problems, Path(args.out), pictures=not args.no_pictures, show_progress=True)
    if explanations:
        worst = max(e.completeness_error for e in explanations)
        print(f"explained {len(explanations)} molecule(s) with {model.name} into {args.out}; "
              f"worst completeness error {worst:.2%}; skipped {len(problems)}")
    else:
        print(f"no molecule could be explained; skipped {len(problems)}", file=sys.stderr)
    return 0 if explanations else 1
