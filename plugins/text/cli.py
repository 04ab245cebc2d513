"""The ``igkit text ...`` commands: ``explain`` (the core's, from the domain contract) and the
thin ``train``, ``evaluate`` and ``saturation`` commands over the plugin's pieces.

Nothing heavy is imported at module level: ``igkit --help`` builds these parsers.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from igkit.commands import add_domain_group, positive_int, run_explain
from igkit.errors import IGInputError
from igkit.records import read_json, read_text

from .domain import TextDomain

#: train and evaluate run on this many torch threads unless --threads says otherwise: training is
#: deterministic only at a fixed thread count (the shipped model was trained on one)
TRAIN_THREADS = 1
CONFIG_NAMES = ("medium", "small")  # keys of model.CONFIGS (not imported here: it loads torch.nn)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """``igkit text explain | train | evaluate | saturation``."""
    domain = TextDomain()
    commands = add_domain_group(subparsers, domain, help="next-word attribution for word-level language models")
    explain = commands.choices["explain"]
    explain.set_defaults(func=lambda args: _explain(domain, args))

    p = commands.add_parser("train", help="train Zaremba et al.'s PTB LSTM language model",
                            description="Train a word-level LSTM on Mikolov's Penn Treebank files. "
                                        f"Runs on {TRAIN_THREADS} torch thread unless --threads is "
                                        "given: at a fixed thread count the run is deterministic.")
    p.add_argument("--data-dir", required=True, help="folder with ptb.train.txt, ptb.valid.txt, ptb.test.txt")
    p.add_argument("--out", required=True, help="model name: writes OUT.safetensors and OUT.json")
    p.add_argument("--config", choices=CONFIG_NAMES, default="small", help="Zaremba et al.'s size")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="override the configuration's epoch count (None: the configuration's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (the run is deterministic)")
    _add_training_run_arguments(p)
    p.set_defaults(func=_cmd_train)

    p = commands.add_parser("evaluate", help="valid and test perplexity of a saved model (as shipped)",
                            description=f"Perplexity on ptb.valid.txt and ptb.test.txt ({TRAIN_THREADS} "
                                        f"torch thread unless --threads is given).")
    p.add_argument("--data-dir", required=True, help="folder with ptb.train.txt, ptb.valid.txt, ptb.test.txt")
    p.add_argument("--model", default=None, help="NAME of a NAME.safetensors/NAME.json pair (default: shipped)")
    _add_training_run_arguments(p)
    p.set_defaults(func=_cmd_evaluate)

    p = commands.add_parser("saturation", help="Figure 8: next-word probability vs α for random test windows")
    p.add_argument("--data-dir", required=True,
                   help="folder with Mikolov's ptb.*.txt (windows from the test split)")
    p.add_argument("--model", default=None, help="NAME of a NAME.safetensors/NAME.json pair (default: shipped)")
    p.add_argument("--windows", type=positive_int, default=20, help="how many random test windows")
    p.add_argument("--words", type=positive_int, default=10, help="context words per window")
    p.add_argument("--alphas", type=positive_int, default=51, help="points on each curve")
    p.add_argument("--seed", type=int, default=0, help="seed that picks the windows")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_saturation)


def _add_training_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--threads`` (default 1 here, for determinism), ``--quiet`` and ``--debug``."""
    g = parser.add_argument_group("run")
    g.add_argument("--threads", type=positive_int, default=TRAIN_THREADS,
                   help="torch threads (more can be faster on an idle machine, but runs are "
                        "bit-reproducible only at one fixed count)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")


def _explain(domain: TextDomain, args: argparse.Namespace) -> int:
    """The core's explain command; a run of one context also prints its table, as the paper shows it."""
    code = run_explain(domain, args)
    report = read_json(Path(args.out) / "report.json")
    folders = list(dict.fromkeys(e["folder"] for e in report["items"] if e.get("folder")))
    if len(folders) == 1:
        print(read_text(Path(args.out) / folders[0] / "table.txt"), end="")
    return code


def _cmd_train(args: argparse.Namespace) -> int:
    from .checkpoint import LanguageModel, save_language_model
    from .data import load_ptb
    from .model import CONFIGS
    from .train import train_language_model

    corpus = load_ptb(args.data_dir)
    config = dataclasses.replace(CONFIGS[args.config], vocab_size=len(corpus.vocab))
    if args.epochs is not None:
        config = dataclasses.replace(config, epochs=args.epochs)
    print(f"training the {args.config} LSTM ({len(corpus.vocab)} words, {corpus.train.numel()} training "
          f"tokens, seed {args.seed}, {args.threads} thread(s))")
    model, record = train_language_model(corpus, config, seed=args.seed, show_progress=not args.quiet)
    info = {"training": {"config_name": args.config, "seed": args.seed, "data": "ptb",
                         "threads": args.threads, **record.to_dict()}}
    weights, config_path = save_language_model(LanguageModel(model, corpus.vocab, info), args.out)
    print(f"wrote {weights} and {config_path}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .checkpoint import check_same_vocabulary, load_language_model
    from .data import load_ptb
    from .train import perplexity

    lm = load_language_model(args.model)
    corpus = load_ptb(args.data_dir)
    check_same_vocabulary(lm, corpus.vocab, f"{args.data_dir}/ptb.train.txt")
    steps = lm.model.config.num_steps
    for split in ("valid", "test"):
        print(f"{split} perplexity {perplexity(lm.model, getattr(corpus, split), steps):.2f}")
    return 0


def _cmd_saturation(args: argparse.Namespace) -> int:
    from .checkpoint import check_same_vocabulary, load_language_model
    from .data import load_ptb
    from .saturation import random_windows, saturation_curves, write_saturation

    lm = load_language_model(args.model)
    corpus = load_ptb(args.data_dir)
    check_same_vocabulary(lm, corpus.vocab, f"{args.data_dir}/ptb.train.txt")
    if corpus.test.numel() <= args.words:
        raise IGInputError(f"the test split has {corpus.test.numel()} tokens; --words {args.words} needs more")
    windows = random_windows(corpus.test, args.windows, args.words, args.seed)
    curves = saturation_curves(lm, windows, args.alphas)
    for path in write_saturation(curves, Path(args.out)):
        print(f"wrote {path}")
    at_zero = sorted(p[0] for p in curves["probability"])
    at_one = sorted(p[-1] for p in curves["probability"])
    print(f"{len(at_one)} windows: probability at α=0 median {at_zero[len(at_zero) // 2]:.4f}, "
          f"at α=1 median {at_one[len(at_one) // 2]:.4f}")
    return 0
