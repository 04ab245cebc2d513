"""``igkit molecules evaluate`` and ``score-methods``: attributions scored on molecules whose answer is
known, for every model kind the explain command takes (weave, chemprop, PyTorch Geometric)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from igkit.cli.commands import add_integration_arguments, integration_from_args, positive_int
from igkit.errors import IGInputError

from .domain import MoleculesDomain

if TYPE_CHECKING:
    from .readers import Problem


def add_scoring_commands(sub: argparse._SubParsersAction) -> None:
    _add_evaluate(sub)
    _add_score_methods(sub)


def report_problems(problems: list[Problem]) -> None:
    """Tell the user which rows were skipped and why (on stderr)."""
    for p in problems:
        print(f"skipped {p}", file=sys.stderr)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="do atom attributions find the atoms a rule is about? (IG vs grad×input)")
    p.add_argument("--task", required=True, help="the task the model was trained on: a name of make-task "
                   "--task (e.g. fluoride_carbonyl), a rule, or 'crippen'")
    p.add_argument("--model", default=None, help="checkpoint NAME (default: the shipped model), a chemprop "
                   "v2 checkpoint (.pt/.ckpt), or module:factory of a PyTorch Geometric model with --weights")
    _add_model_arguments(p)
    p.add_argument("--data", default=None, help="CSV/.smi/.sdf of molecules; default: the test split of "
                   "RDKit's first_5K.smi as made by make-task")
    _add_scored_data_arguments(p)
    p.add_argument("--limit", type=int, default=None, help="evaluate at most this many molecules")
    p.add_argument("--score", choices=("probability", "logit"), default="probability",
                   help="the IG and grad x input columns explain this (integrated_gradients_default "
                        "always uses the logit)")
    p.add_argument("--baseline", choices=("zero", "carbon", "zero+carbon"), default=None,
                   help="baseline of the integrated_gradients_default column (default zero+carbon: the "
                   "zero and carbon-skeleton baselines averaged, on the logit)")
    p.add_argument("--out", required=True, help="output folder")
    add_integration_arguments(p, MoleculesDomain.integration)
    p.set_defaults(func=_cmd_evaluate)


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Which model evaluate and score-methods explain, beyond ``--model`` (read by :func:`_scored_model`)."""
    from .model_kinds import MODEL_KINDS

    p.add_argument("--model-kind", choices=MODEL_KINDS, default="auto", help="as for explain: auto detects "
                   "chemprop checkpoints (.pt/.pth/.ckpt) and module:factory PyTorch Geometric models")
    p.add_argument("--trust-checkpoint", action="store_true", help="unpickle a chemprop checkpoint in full "
                   "(only for files you trust: unpickling can run any code)")
    p.add_argument("--weights", default=None, help="state dict of a PyTorch Geometric --model module:factory")
    p.add_argument("--target", default=None, help="the model's output explained: task name or index "
                   "(default: its first task)")


def _scored_model(args: argparse.Namespace):
    """The model of ``--model`` with ``--model-kind``/``--trust-checkpoint``/``--weights``, as explain loads it."""
    return MoleculesDomain().load_model(args.model, task=args.target, model_kind=args.model_kind,
                                        trust_checkpoint=args.trust_checkpoint, weights=args.weights,
                                        baseline="zero")


def _add_scored_data_arguments(p: argparse.ArgumentParser) -> None:
    """How evaluate and score-methods pick their molecules (read by :func:`_scored_records`)."""
    p.add_argument("--smiles-col", default="smiles", help="SMILES column of a CSV --data")
    p.add_argument("--id-col", default=None, help="column naming each molecule (default: the row number)")
    p.add_argument("--split-col", default=None, help="use only rows whose value here is --split")
    p.add_argument("--split", default="test", help="the split scored (with --split-col)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="as given to make-task (default data)")
    p.add_argument("--seed", type=int, default=0, help="as given to make-task (default data)")


def _scored_records(args: argparse.Namespace):
    """The molecules that evaluate and score-methods score: the test split of RDKit's molecules as
    make-task splits them, or ``--data`` (its ``--split`` rows with ``--split-col``)."""
    from .readers import read_molecules
    from .tasks import RDKIT_MOLECULES, test_flags

    if args.data is None:
        records, problems = read_molecules(RDKIT_MOLECULES)
        flags = test_flags(len(records), args.test_fraction, args.seed)
        return [r for r, test in zip(records, flags) if test], problems
    records, problems = read_molecules(args.data, smiles_col=args.smiles_col, id_col=args.id_col)
    if args.split_col:
        if records and args.split_col not in records[0].fields:
            raise IGInputError(f"{args.data} has no column {args.split_col!r}")
        records = [r for r in records if r.fields[args.split_col].strip().lower() == args.split]
    return records, problems


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_task, write_evaluation
    from .model_kinds import featurize_records
    from .tasks import make_task

    task = make_task(args.task)
    model = _scored_model(args)
    records, problems = _scored_records(args)
    records = records[:args.limit] if args.limit else records
    records, graphs, more = featurize_records(records, model)
    report_problems(problems + more)
    evaluation = evaluate_task(model, task, records, graphs, score=args.score, show_progress=True,
                               baseline=args.baseline, task_name=args.target,
                               integration=integration_from_args(args, MoleculesDomain.integration))
    report_problems(evaluation.problems)
    write_evaluation(evaluation, Path(args.out))
    s = evaluation.summary
    print(f"{s['task']}: model {s['model_quality_on_task_labels']}; per-molecule {s['metric']} over "
          f"{s['scored']} molecules: integrated gradients {s['integrated_gradients']['mean']:.4f}, "
          f"grad_x_input {s['grad_x_input']['mean']:.4f} (mean); written to {args.out}")
    if "integrated_gradients_default" in s:
        d = s["default_attribution"]
        print(f"igkit's default attribution (IG of the {d['score']}, baseline {d['baseline']}): "
              f"{s['integrated_gradients_default']['mean']:.4f} (own share only "
              f"{s['integrated_gradients_default_own']['mean']:.4f}); each fragment found in "
              + ", ".join(f"{r:.0%}" for r in s["fragment_found_rate"]) + " of the molecules")
    return 0


def _add_score_methods(sub: argparse._SubParsersAction) -> None:
    from .domain import COMPARED_METHODS

    p = sub.add_parser("score-methods", help="score attribution methods on a task whose atoms are known "
                       "(per-molecule atom ROC-AUC; Kendall tau for crippen): a methods × metrics table")
    p.add_argument("--task", required=True, help="a named task (benzene, fluoride_carbonyl, ...), a rule "
                   "('F AND carbonyl'), or 'crippen'")
    p.add_argument("--model", default=None, help="checkpoint NAME trained on the task (default: the shipped "
                   "benzene model), a chemprop v2 checkpoint, or module:factory of a PyG model with --weights")
    _add_model_arguments(p)
    p.add_argument("--methods", default=",".join(COMPARED_METHODS),
                   help="comma-separated methods scored beside integrated gradients (always scored); "
                   "see `igkit methods`")
    p.add_argument("--data", default=None, help="CSV/.smi/.sdf of molecules (e.g. a make-task CSV with "
                   "--split-col split); default: the test split of RDKit's first_5K.smi as make-task draws it")
    _add_scored_data_arguments(p)
    p.add_argument("--limit", type=positive_int, default=200,
                   help="score at most this many molecules with a known answer (rule positives; any for crippen)")
    p.add_argument("--score", choices=("probability", "logit"), default="probability",
                   help="explain the class probability (the explain command's default) or the logit")
    p.add_argument("--examples", type=int, default=4, help="molecules on examples.png (the true atoms and "
                   "every method side by side; 0: none)")
    p.add_argument("--out", required=True, help="output folder: scores.csv/.json/.md/.png, per_molecule.csv, "
                   "examples.png")
    add_integration_arguments(p, MoleculesDomain.integration)
    p.set_defaults(func=_cmd_score_methods)


def _score_command(args: argparse.Namespace) -> str:
    """The command that reproduces this table (every option that changes it, spelled out)."""
    import shlex

    defaults = MoleculesDomain.integration
    parts = ["igkit", "molecules", "score-methods", "--task", args.task, "--methods", args.methods,
             "--limit", str(args.limit)]
    for flag, value, default in (
            ("--score", args.score, "probability"), ("--model", args.model, None),
            ("--model-kind", args.model_kind, "auto"), ("--weights", args.weights, None),
            ("--target", args.target, None), ("--data", args.data, None),
            ("--smiles-col", args.smiles_col if args.data else None, "smiles"), ("--id-col", args.id_col, None),
            ("--split-col", args.split_col, None), ("--split", args.split if args.split_col else None, "test"),
            ("--steps", args.steps, defaults.steps), ("--tolerance", args.tolerance, defaults.tolerance),
            ("--max-steps", args.max_steps, defaults.max_steps)):
        if value is not None and value != default:
            parts += [flag, str(value)]
    if args.data is None and (args.test_fraction, args.seed) != (0.2, 0):
        parts += ["--test-fraction", str(args.test_fraction), "--seed", str(args.seed)]
    return " ".join(shlex.quote(p) for p in [*parts, "--out", args.out])


def _cmd_score_methods(args: argparse.Namespace) -> int:
    from igkit.methods.registry import get_method

    from .compare import print_table, score_methods, write_scores
    from .model_kinds import featurize_records
    from .tasks import make_task

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for name in methods:
        get_method(name)                     # an unknown name is one error, before any work
    task = make_task(args.task)
    model = _scored_model(args)
    for name in methods:                     # what this model kind cannot offer, before any work
        reason = getattr(model, "unavailable_methods", {}).get(name)
        if reason:
            raise IGInputError(reason)
    records, problems = _scored_records(args)
    records, graphs, more = featurize_records(records, model)
    report_problems(problems + more)
    scores = score_methods(model, task, records, graphs, methods, limit=args.limit, score=args.score,
                           integration=integration_from_args(args, MoleculesDomain.integration),
                           show_progress=not args.quiet, task_name=args.target)
    report_problems(scores.problems)
    if not scores.explanations:
        raise IGInputError(f"no molecule of the data has a known answer for {task.name!r} (rule positives "
                           f"with atoms outside the rule); check --task, --data and --split")
    command = _score_command(args)
    paths = write_scores(scores, Path(args.out), command=command, task=task, examples=args.examples)
    print_table(scores)
    print(f"wrote {', '.join(p.name for p in paths)} to {args.out}")
    return 0

