"""The ``igkit text ...`` subcommands: argument parsing and what each one prints."""
from __future__ import annotations

import argparse
import dataclasses

import torch

from .checkpoint import LanguageModel, save_language_model
from .data import load_ptb
from .model import CONFIGS
from .train import train_language_model

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
