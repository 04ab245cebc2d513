"""``igkit molecules ...``: train, explain, saturation, make-task and evaluate.

Each command imports its modules when it runs, so ``igkit`` starts without
loading RDKit and matplotlib for other plugins' commands.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from igkit.cli import add_ig_arguments, ig_options
from igkit.errors import IGInputError

if TYPE_CHECKING:
    from .readers import Problem

#: the shared machines have few cores: training and attribution use at most this many threads
MAX_THREADS = 2


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("molecules", help="weave networks on molecules: train, explain, evaluate")
    sub = parser.add_subparsers(dest="molecules_command", metavar="COMMAND", required=True)
    _add_train(sub)
    _add_explain(sub)
    _add_saturation(sub)
    _add_make_task(sub)
    _add_evaluate(sub)


def report_problems(problems: list[Problem]) -> None:
    """Tell the user which rows were skipped and why (on stderr)."""
    for p in problems:
        print(f"skipped {p}", file=sys.stderr)


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
                  "history": history,
                  "arguments": {k: v for k, v in vars(args).items()
                                if k not in ("func", "molecules_command", "out")}}
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
    p.set_defaults(func=_cmd_explain)


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
                                          show_progress=True, **ig_options(args))
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


def _add_saturation(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("saturation", help="score and gradient sum along α·x for a set of molecules (Fig. 13)")
    _add_molecule_inputs(p)
    p.add_argument("--alphas", type=int, default=21, help="points on the α grid (default 21)")
    p.add_argument("--limit", type=int, default=25, help="at most this many molecules (default 25)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_saturation)


def _cmd_saturation(args: argparse.Namespace) -> int:
    from .api import featurize_records
    from .checkpoint import load_model
    from .saturation import saturation_curves, write_saturation

    _limit_threads()
    model = load_model(args.model)
    records, problems = _molecule_inputs(args)
    records, graphs, more = featurize_records(records[:args.limit], model.featurization)
    report_problems(problems + more)
    if not graphs:
        raise IGInputError("none of the molecules could be used")
    curves = saturation_curves(model, graphs, task=args.task, score=args.score, alphas=args.alphas)
    task = model.tasks[model.task_index(args.task)]
    paths = write_saturation(curves, [r.id for r in records], Path(args.out), f"{task} {args.score}")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def _add_make_task(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("make-task", help="label molecules by a SMARTS rule (or Crippen logP) into a CSV")
    p.add_argument("--rule", required=True, help="e.g. 'benzene', 'F AND carbonyl', 'NOT Cl', or 'crippen'")
    p.add_argument("--input", default=None, help="molecules (.smi/.sdf/.csv); default: RDKit's "
                   "Data/NCI/first_5K.smi")
    p.add_argument("--smiles-col", default="smiles")
    p.add_argument("--id-col", default=None)
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="CSV to write: mol_id,smiles,label,split")
    p.set_defaults(func=_cmd_make_task)


def _task_records(args: argparse.Namespace):
    from .readers import read_molecules
    from .tasks import RDKIT_MOLECULES

    records, problems = read_molecules(args.input or RDKIT_MOLECULES, smiles_col=args.smiles_col,
                                       id_col=args.id_col)
    report_problems(problems)
    return records


def _cmd_make_task(args: argparse.Namespace) -> int:
    from .tasks import make_task, write_task_csv

    task = make_task(args.rule)
    counts = write_task_csv(task, _task_records(args), Path(args.out), test_fraction=args.test_fraction,
                            seed=args.seed)
    print(f"wrote {args.out}: {counts['train']} train, {counts['test']} test"
          + (f", {counts['positive']} positive" if task.rule is not None else ""))
    return 0


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="do atom attributions find the atoms a rule is about? (IG vs grad×input)")
    p.add_argument("--task", required=True, help="the rule the model was trained on, or 'crippen'")
    p.add_argument("--model", default=None, help="checkpoint NAME (default: the shipped model)")
    p.add_argument("--data", default=None, help="CSV/.smi/.sdf of molecules; default: the test split of "
                   "RDKit's first_5K.smi as made by make-task")
    p.add_argument("--smiles-col", default="smiles")
    p.add_argument("--id-col", default=None)
    p.add_argument("--split-col", default=None, help="use only rows whose split is --split")
    p.add_argument("--split", default="test")
    p.add_argument("--test-fraction", type=float, default=0.2, help="as given to make-task (default data)")
    p.add_argument("--seed", type=int, default=0, help="as given to make-task (default data)")
    p.add_argument("--limit", type=int, default=None, help="evaluate at most this many molecules")
    p.add_argument("--score", choices=("probability", "logit"), default="probability")
    p.add_argument("--out", required=True, help="output folder")
    add_ig_arguments(p)
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .api import featurize_records
    from .checkpoint import load_model
    from .evaluate import evaluate_task, write_evaluation
    from .readers import read_molecules
    from .tasks import RDKIT_MOLECULES, make_task, test_flags

    _limit_threads()
    task = make_task(args.task)
    model = load_model(args.model)
    if args.data is None:
        records, problems = read_molecules(RDKIT_MOLECULES)
        flags = test_flags(len(records), args.test_fraction, args.seed)
        records = [r for r, test in zip(records, flags) if test]
    else:
        records, problems = read_molecules(args.data, smiles_col=args.smiles_col, id_col=args.id_col)
        if args.split_col:
            if records and args.split_col not in records[0].fields:
                raise IGInputError(f"{args.data} has no column {args.split_col!r}")
            records = [r for r in records if r.fields[args.split_col].strip().lower() == args.split]
    records = records[:args.limit] if args.limit else records
    records, graphs, more = featurize_records(records, model.featurization)
    report_problems(problems + more)
    evaluation = evaluate_task(model, task, records, graphs, score=args.score, show_progress=True,
                               **ig_options(args))
    report_problems(evaluation.problems)
    write_evaluation(evaluation, Path(args.out))
    s = evaluation.summary
    print(f"{s['task']}: model {s['model_quality_on_task_labels']}; per-molecule {s['metric']} over "
          f"{s['scored']} molecules: integrated gradients {s['integrated_gradients']['mean']:.4f}, "
          f"grad_x_input {s['grad_x_input']['mean']:.4f} (mean); written to {args.out}")
    return 0
