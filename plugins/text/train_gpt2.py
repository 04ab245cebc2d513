"""Train the shipped small GPT-2-style model on Penn Treebank, offline, in one command.

    python -m igkit.plugins.text.train_gpt2 --data-dir ../shared/data/ptb --out plugins/text/models/ptb_gpt2

A byte-level BPE tokenizer (4,096 tokens) (the ``tokenizers`` library) is trained on ``ptb.train.txt``, then a
2-layer GPT-2 (128 dimensions, 4 heads, 128 positions) for a fixed number of optimiser steps on
one torch thread with a fixed seed, so the run is reproducible on one machine. It writes a
``save_pretrained`` folder (``config.json``, ``model.safetensors``, ``tokenizer.json``) plus
``training.json`` with the perplexities: per BPE token and per PTB word (the total negative
log-likelihood over the split's words, comparable with the word-level LSTM's perplexity).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

#: the shipped model's architecture and schedule (GPT2Config names)
ARCHITECTURE = {"n_layer": 2, "n_embd": 128, "n_head": 4, "n_positions": 128}
VOCAB_SIZE = 4096
EOS = "<|endoftext|>"
BATCH = 16
STEPS = 1000
LEARNING_RATE = 3e-3
WARMUP = 100


def read_split(data_dir: Path, split: str) -> str:
    """A PTB split as one string, sentences separated by newlines (as in Mikolov's files)."""
    from igkit.io.records import read_lines

    return "\n".join(line.strip() for _, line in read_lines(data_dir / f"ptb.{split}.txt") if line.strip()) + "\n"


def train_tokenizer(text: str, vocab_size: int = VOCAB_SIZE) -> Any:
    """Byte-level BPE over the training text (deterministic), wrapped as a fast HF tokenizer."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer(add_prefix_space=True)
    bpe.train_from_iterator(text.splitlines(), vocab_size=vocab_size, min_frequency=2,
                            special_tokens=[EOS], show_progress=False)
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token=EOS, bos_token=EOS,
                                   unk_token=EOS, model_max_length=ARCHITECTURE["n_positions"])


def token_stream(tokenizer: Any, text: str) -> "Any":
    """The split as one flat id tensor (each sentence followed by the end-of-text token)."""
    import torch

    ids: list[int] = []
    for line in text.splitlines():
        ids += tokenizer(line, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return torch.tensor(ids, dtype=torch.long)


def evaluate(model: Any, ids: "Any", context: int) -> float:
    """Total negative log-likelihood (nats) of ``ids`` in non-overlapping windows of ``context``."""
    import torch

    total = 0.0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(ids) - 1, context):
            window = ids[start:start + context + 1]
            if len(window) < 2:
                break
            logits = model(input_ids=window[:-1].unsqueeze(0), use_cache=False).logits[0]
            total += float(torch.nn.functional.cross_entropy(logits, window[1:], reduction="sum"))
    return total


def train(data_dir: Path, out: Path, *, steps: int = STEPS, seed: int = 0) -> dict[str, Any]:
    """Tokenizer, model and schedule as in this module's constants; returns what was measured."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    start = time.perf_counter()
    texts = {split: read_split(data_dir, split) for split in ("train", "valid", "test")}
    tokenizer = train_tokenizer(texts["train"])
    streams = {split: token_stream(tokenizer, text) for split, text in texts.items()}
    config = GPT2Config(vocab_size=len(tokenizer), bos_token_id=tokenizer.eos_token_id,
                        eos_token_id=tokenizer.eos_token_id, **ARCHITECTURE)
    model = GPT2LMHeadModel(config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / WARMUP) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    train_ids, context = streams["train"], ARCHITECTURE["n_positions"]
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for step in range(steps):
        offsets = torch.randint(0, len(train_ids) - context - 1, (BATCH,), generator=generator)
        batch = torch.stack([train_ids[o:o + context + 1] for o in offsets.tolist()])
        loss = model(input_ids=batch[:, :-1], labels=batch[:, :-1].clone(), use_cache=False).loss
        # labels are shifted inside the model: position t predicts t + 1 of the same window
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        if step % 250 == 0 or step == steps - 1:
            print(f"step {step}: train loss {float(loss):.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
    measured: dict[str, Any] = {"seed": seed, "steps": steps, "batch": BATCH, "learning_rate": LEARNING_RATE,
                                "threads": torch.get_num_threads(), **ARCHITECTURE, "vocab_size": len(tokenizer),
                                "parameters": sum(p.numel() for p in model.parameters())}
    for split in ("valid", "test"):
        nll = evaluate(model, streams[split], context)
        words = sum(len(line.split()) + 1 for line in texts[split].splitlines())  # + the end of each sentence
        measured[f"{split}_token_perplexity"] = round(math.exp(nll / (len(streams[split]) - 1)), 2)
        measured[f"{split}_word_perplexity"] = round(math.exp(nll / words), 2)
    measured["seconds"] = round(time.perf_counter() - start, 1)
    out.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "training.json").write_text(json.dumps(measured, indent=2) + "\n")
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m igkit.plugins.text.train_gpt2", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, type=Path, help="folder with ptb.train.txt, ptb.valid.txt, ptb.test.txt")
    parser.add_argument("--out", required=True, type=Path, help="folder to write (save_pretrained layout)")
    parser.add_argument("--steps", type=int, default=STEPS, help="optimiser steps (batch 16 × 128 tokens)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the batches")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (reproducible at a fixed count)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    measured = train(args.data_dir, args.out, steps=args.steps, seed=args.seed)
    print(json.dumps(measured, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
