"""The ``igkit text ...`` commands: ``explain`` (the core's, from the domain contract) and the
thin ``train``, ``evaluate`` and ``saturation`` commands over the plugin's pieces.

Nothing heavy is imported at module level: ``igkit --help`` builds these parsers.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from igkit.cli.commands import add_domain_group, add_integration_arguments, integration_from_args, positive_int, run_explain
from igkit.errors import IGInputError
from igkit.outputs.printable import printable
from igkit.io.records import read_json, read_text

from .domain import TextDomain
from .methods import DEFAULT_SCORE_METHODS

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

    p = commands.add_parser(
        "score-methods", help="score attribution methods: delete/insert the words each ranks first",
        description="Explain next-word predictions with every method (the explain path), rank each "
                    "context's words by each method, and measure how the probability of the next word "
                    "falls when the top-k words are replaced (deletion) or rises when only they are put "
                    "back (insertion), as AUCs over k, with the zero embedding and <unk> as the "
                    "replacement; a random ranking is the control. Writes scores.csv, scores.json, "
                    "scores.md, contexts.csv and curves.png into --out and prints the table.")
    p.add_argument("contexts", nargs="*", help="contexts to score on (e.g. \"the shareholders claimed "
                                               "more\"), beside or instead of --data-dir")
    p.add_argument("--input", action="append", default=[], metavar="FILE",
                   help="file with one context per line (CONTEXT<TAB>TARGET names the target); may be "
                        "repeated")
    p.add_argument("--data-dir", default=None,
                   help="folder with Mikolov's ptb.*.txt: score on random positions of --split")
    p.add_argument("--split", choices=("valid", "test"), default="valid", help="split read from --data-dir")
    p.add_argument("--positions", type=positive_int, default=200,
                   help="random positions of --split (seeded by --seed), each with --window words before it")
    p.add_argument("--window", type=positive_int, default=20, help="context words per position (--data-dir)")
    p.add_argument("--target", choices=("predicted", "actual"), default="predicted",
                   help="explain the model's predicted next word, or the word that actually follows "
                        "(--data-dir positions)")
    p.add_argument("--methods", default=",".join(DEFAULT_SCORE_METHODS),
                   help="methods to score, comma-separated (integrated_gradients included by name; "
                        "see `igkit methods`)")
    p.add_argument("--seed", type=int, default=0, help="seed of the positions and of the random control")
    p.add_argument("--model", default=None, help="NAME of a NAME.safetensors/NAME.json pair (default: shipped), "
                                                 "or a transformers causal LM (folder, cached Hub id, ptb-gpt2)")
    p.add_argument("--units", choices=("words", "tokens"), default="words",
                   help="transformers models: rank and replace whole words (all their tokens) or single tokens")
    p.add_argument("--out", required=True, help="output folder (files in it are replaced)")
    add_integration_arguments(p, TextDomain.integration)
    p.set_defaults(func=_cmd_score_methods)


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
        table = read_text(Path(args.out) / folders[0] / "table.txt")
        print("\n".join(printable(line, None) for line in table.split("\n")), end="")  # words escaped
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


def _model_and_corpus(args: argparse.Namespace):
    """The model and the PTB corpus of --data-dir, checked to share one vocabulary."""
    from .checkpoint import check_same_vocabulary, load_language_model
    from .data import load_ptb

    lm = load_language_model(args.model)
    corpus = load_ptb(args.data_dir)
    check_same_vocabulary(lm, corpus.vocab, f"{args.data_dir}/ptb.train.txt")
    return lm, corpus


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .train import perplexity

    lm, corpus = _model_and_corpus(args)
    steps = lm.model.config.num_steps
    for split in ("valid", "test"):
        print(f"{split} perplexity {perplexity(lm.model, getattr(corpus, split), steps):.2f}")
    return 0


def _cmd_saturation(args: argparse.Namespace) -> int:
    from .saturation import random_windows, saturation_curves, write_saturation

    lm, corpus = _model_and_corpus(args)
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


def _cmd_score_methods(args: argparse.Namespace) -> int:
    from .contexts import read_contexts
    from .data import PTB_FILES
    from .scoring import LEGEND, check_score_methods, ptb_items, score_methods, table_lines, write_scores

    methods = check_score_methods(args.methods.split(","))
    if not args.contexts and not args.input and args.data_dir is None:
        raise IGInputError("nothing to score on: give --data-dir (Penn Treebank positions), contexts, "
                           "or --input FILE")
    domain = TextDomain()
    items = list(read_contexts([*args.contexts, *(Path(f) for f in args.input)]))
    if args.data_dir is not None:
        path = Path(args.data_dir) / PTB_FILES[args.split]
        if not path.is_file():
            raise IGInputError(f"{path} not found; --data-dir must hold Mikolov's {PTB_FILES[args.split]}")
        items += ptb_items(path, args.positions, args.window, args.seed, args.target)
    lm = domain.load_model(args.model)
    integration = integration_from_args(args, domain.integration)
    scored = score_methods(lm, items, methods, integration=vars(integration), seed=args.seed,
                           say=(lambda line: None) if args.quiet else print, units=args.units)
    command = _score_command(args, methods)
    settings = {k: getattr(args, k) for k in ("data_dir", "split", "positions", "window", "target", "seed",
                                                 "model", "input", "contexts", "units")}
    settings["methods"] = methods
    settings["integration"] = integration.describe()
    paths = write_scores(scored, Path(args.out), command=command, settings=settings)
    print("\n".join(table_lines(scored)))
    print(LEGEND)
    if not hasattr(lm, "vocab"):
        print(f"transformers model: {args.units} are ranked and replaced; the <unk> columns replace them with "
              f"the end-of-text token's embedding; probabilities are those of the explained token(s)")
    print(f"{scored.positions} context(s) of {args.target if args.data_dir else 'given'} next words; "
          f"{len(scored.skipped)} skipped")
    for path in paths:
        print(f"wrote {path}")
    return 1 if scored.skipped else 0


def _score_command(args: argparse.Namespace, methods: list[str]) -> str:
    """The command line that reproduces a score-methods run (its settings, spelled out)."""
    import shlex

    parts = ["igkit", "text", "score-methods", *args.contexts]
    for f in args.input:
        parts += ["--input", f]
    if args.data_dir is not None:
        parts += ["--data-dir", str(args.data_dir), "--split", args.split, "--positions", str(args.positions),
                  "--window", str(args.window), "--target", args.target]
    parts += ["--methods", ",".join(methods), "--seed", str(args.seed)]
    defaults = TextDomain.integration
    if args.steps is not None:
        parts += ["--steps", str(args.steps), "--method", args.method]
    elif args.tolerance != defaults.tolerance:
        parts += ["--tolerance", str(args.tolerance)]
    if args.model:
        parts += ["--model", args.model]
    if args.units != "words":
        parts += ["--units", args.units]
    parts += ["--out", str(args.out)]
    return shlex.join(parts)
