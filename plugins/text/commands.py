"""The ``igkit text ...`` subcommands: argument parsing and what each one prints."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

from igkit.cli import add_ig_arguments, ig_options
from igkit.errors import IGInputError
from igkit.explain import write_summary

from .checkpoint import LanguageModel, check_same_vocabulary, load_language_model, save_language_model
from .contexts import Context, corpus_positions, parse_context, read_context_lines, unknown_word_warning
from .data import load_ptb
from .explainer import Explanation, explain_contexts
from .model import CONFIGS
from .render import html_page, markdown_table, terminal_table, write_csv, write_json
from .saturation import random_windows, saturation_curves, write_saturation
from .train import perplexity, train_language_model

#: adaptive integration to 0.1%: at 1% the total adds up but single words can still be off by 10%
DEFAULT_TOLERANCE = 0.001

TRAIN_THREADS = 1


def add_text_commands(subparsers: argparse._SubParsersAction) -> None:
    """``igkit text train | explain | saturation``."""
    text = subparsers.add_parser("text", help="next-word attribution for word-level language models")
    sub = text.add_subparsers(dest="text_command", metavar="SUBCOMMAND")
    text.set_defaults(func=lambda _args: text.print_help() or 0)

    p = sub.add_parser("train", help="train Zaremba et al.'s PTB LSTM language model")
    p.add_argument("--data-dir", required=True, help="folder with ptb.train.txt, ptb.valid.txt, ptb.test.txt")
    p.add_argument("--out", required=True, help="model name: writes OUT.safetensors and OUT.json")
    p.add_argument("--config", choices=sorted(CONFIGS), default="small", help="Zaremba et al.'s size")
    p.add_argument("--epochs", type=int, default=None, help="override the configuration's epoch count")
    p.add_argument("--seed", type=int, default=0, help="random seed (the run is deterministic)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="valid and test perplexity of a saved model (as shipped)")
    p.add_argument("--data-dir", required=True, help="folder with ptb.train.txt, ptb.valid.txt, ptb.test.txt")
    p.add_argument("--model", default=None, help="NAME of a NAME.safetensors/NAME.json pair (default: shipped)")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("explain", help="which context words made the model predict the next word")
    p.add_argument("context", nargs="?", help='the context, e.g. "the shareholders claimed more"')
    p.add_argument("--input", help="file with one context per line (CONTEXT<TAB>TARGET to name the target)")
    p.add_argument("--every-position", action="store_true",
                   help="treat --input as a corpus and explain the actual next word at every position")
    p.add_argument("--window", type=int, default=20, help="context words per position (--every-position)")
    p.add_argument("--start", type=int, default=0, help="first position (--every-position)")
    p.add_argument("--limit", type=int, default=None, help="at most this many positions (--every-position)")
    p.add_argument("--target", help="explain this next word instead of the model's prediction")
    p.add_argument("--scale", action="store_true", help="print attributions ×1e-3 (tiny predictions)")
    p.add_argument("--model", default=None, help="NAME of a NAME.safetensors/NAME.json pair (default: shipped)")
    p.add_argument("--out", required=True, help="output folder")
    add_ig_arguments(p, default_tolerance=DEFAULT_TOLERANCE)
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser("saturation", help="Figure 8: next-word probability vs α for random test windows")
    p.add_argument("--data-dir", required=True, help="folder with Mikolov's ptb.*.txt (windows from the test split)")
    p.add_argument("--model", default=None, help="NAME of a NAME.safetensors/NAME.json pair (default: shipped)")
    p.add_argument("--windows", type=int, default=20, help="how many random test windows (default 20)")
    p.add_argument("--words", type=int, default=10, help="context words per window (default 10)")
    p.add_argument("--alphas", type=int, default=51, help="points on each curve (default 51)")
    p.add_argument("--seed", type=int, default=0, help="seed that picks the windows")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_saturation)


def _cmd_train(args: argparse.Namespace) -> int:
    torch.set_num_threads(TRAIN_THREADS)
    corpus = load_ptb(args.data_dir)
    config = dataclasses.replace(CONFIGS[args.config], vocab_size=len(corpus.vocab))
    if args.epochs is not None:
        config = dataclasses.replace(config, epochs=args.epochs)
    print(f"training the {args.config} LSTM ({len(corpus.vocab)} words, {corpus.train.numel()} training "
          f"tokens, seed {args.seed})")
    model, record = train_language_model(corpus, config, seed=args.seed)
    info = {"training": {"config_name": args.config, "seed": args.seed, "data": "ptb",
                         "threads": TRAIN_THREADS, **record.to_dict()}}
    weights, config_path = save_language_model(LanguageModel(model, corpus.vocab, info), args.out)
    print(f"wrote {weights} and {config_path}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    torch.set_num_threads(TRAIN_THREADS)
    lm = load_language_model(args.model)
    corpus = load_ptb(args.data_dir)
    check_same_vocabulary(lm, corpus.vocab, f"{args.data_dir}/ptb.train.txt")
    steps = lm.model.config.num_steps
    for split in ("valid", "test"):
        print(f"{split} perplexity {perplexity(lm.model, getattr(corpus, split), steps):.2f}")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    lm = load_language_model(args.model)
    contexts, failed = _contexts(args, lm)
    warning = unknown_word_warning(contexts, lm.vocab)
    if warning:
        print(warning, file=sys.stderr)
    start = time.perf_counter()
    explanations, group_failures = explain_contexts(lm, contexts, show_progress=True, **ig_options(args))
    failed.update(group_failures)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, reason in failed.items():
        print(f"skipped {name!r}: {reason}", file=sys.stderr)
    if args.context is None:
        _write_batch(explanations, failed, out, args.scale)
    elif explanations:
        _write_single(explanations[0], out, args.scale, time.perf_counter() - start)
    return 0 if explanations else 2


def _contexts(args: argparse.Namespace, lm: LanguageModel) -> tuple[list[Context], dict[str, str]]:
    if (args.context is None) == (args.input is None):
        raise IGInputError("give either a CONTEXT or --input FILE (not both, not neither)")
    if args.context is not None:
        return [parse_context(args.context, lm.vocab, args.target)], {}
    if args.every_position:
        return corpus_positions(args.input, lm.vocab, args.window, args.start, args.limit), {}
    contexts, failed = [], {}
    for number, (text, target) in enumerate(read_context_lines(args.input), start=1):
        name = f"line {number}: {text}"
        try:
            contexts.append(parse_context(text, lm.vocab, target or args.target, name=name))
        except IGInputError as exc:
            failed[name] = str(exc)
    return contexts, failed


def _write_single(exp: Explanation, out: Path, scale: bool, seconds: float) -> None:
    table = terminal_table(exp, scale)
    print(table)
    (out / "table.txt").write_text(table + "\n")
    (out / "table.md").write_text(markdown_table(exp, scale))
    write_csv(out / "words.csv", [exp])
    (out / "attribution.html").write_text(html_page([exp], scale))
    write_json(out / "explanation.json", [exp], {})
    write_summary(out, exp.result, target=exp.target_word, seconds=seconds, example=exp.example,
                  extra={"context": exp.context.name, "predicted": exp.predicted_word,
                         "words": exp.context.tokens, "integrated_gradients": exp.ig.tolist(),
                         "gradients": exp.gradient.tolist()})
    print(f"wrote table.txt, table.md, words.csv, attribution.html, explanation.json, summary.json to {out}")


def _write_batch(explanations: list[Explanation], failed: dict[str, str], out: Path, scale: bool) -> None:
    write_csv(out / "words.csv", explanations)
    write_json(out / "explanations.json", explanations, failed)
    (out / "tables.md").write_text("\n".join(markdown_table(e, scale) for e in explanations))
    (out / "attribution.html").write_text(html_page(explanations, scale))
    errors = sorted(e.summary["completeness_error"] for e in explanations)
    check = f"; completeness error max {100 * errors[-1]:.3f}%, median {100 * errors[len(errors) // 2]:.3f}%" \
        if errors else ""
    print(f"explained {len(explanations)} context(s), {len(failed)} skipped{check}")
    print(f"wrote words.csv, explanations.json, tables.md, attribution.html to {out}")


def _cmd_saturation(args: argparse.Namespace) -> int:
    lm = load_language_model(args.model)
    corpus = load_ptb(args.data_dir)
    check_same_vocabulary(lm, corpus.vocab, f"{args.data_dir}/ptb.train.txt")
    if args.windows < 1 or args.words < 1:
        raise IGInputError(f"--windows and --words must be at least 1, got {args.windows} and {args.words}")
    windows = random_windows(corpus.test, args.windows, args.words, args.seed)
    curves = saturation_curves(lm, windows, args.alphas)
    for path in write_saturation(curves, Path(args.out)):
        print(f"wrote {path}")
    at_zero = [p[0] for p in curves["probability"]]
    at_one = [p[-1] for p in curves["probability"]]
    print(f"{len(at_one)} windows: probability at α=0 median {sorted(at_zero)[len(at_zero) // 2]:.4f}, "
          f"at α=1 median {sorted(at_one)[len(at_one) // 2]:.4f}")
    return 0
