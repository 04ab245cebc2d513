"""Training the word LSTM with Zaremba et al.'s schedule: truncated BPTT, plain SGD, clipping.

The loss is summed over the unrolled steps and averaged over the batch, as in
their code, so that learning rate 1 and clip norm 5 mean what they meant there. A loss
or perplexity that turns NaN or infinite (a diverging schedule) stops training with a
:class:`~igkit.errors.NonFiniteError` naming the epoch and the tokens, so no broken model is
ever written.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from igkit.errors import IGInputError, NonFiniteError
from igkit.run.progress import progress

from .data import Corpus, batchify, bptt_chunks, num_chunks
from .model import LMConfig, WordLSTM

EVAL_BATCH = 1


@dataclass
class TrainingRecord:
    """Perplexities per epoch and at the end, and how long it took."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    test_perplexity: float = float("nan")
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"epochs": self.epochs, "test_perplexity": self.test_perplexity,
                "seconds": round(self.seconds, 1)}


def learning_rate(config: LMConfig, epoch: int) -> float:
    """``lr`` for epochs 1..decay_after, then multiplied by ``lr_decay`` each epoch (1-based)."""
    return config.lr * config.lr_decay ** max(0, epoch - config.decay_after)


def train_language_model(corpus: Corpus, config: LMConfig, *, seed: int = 0, show_progress: bool = True,
                         log: Callable[[str], None] = print) -> tuple[WordLSTM, TrainingRecord]:
    """Train on ``corpus.train``, report valid perplexity per epoch and test perplexity at the end."""
    check_config(config)
    torch.manual_seed(seed)
    model = WordLSTM(config)
    rows = batchify(corpus.train, config.batch_size)
    record = TrainingRecord()
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        lr = learning_rate(config, epoch)
        train_ppl = _train_epoch(model, rows, config, lr, f"epoch {epoch}/{config.epochs}", show_progress)
        valid_ppl = perplexity(model, corpus.valid, config.num_steps)
        if not math.isfinite(valid_ppl):
            raise NonFiniteError(f"training diverged: the validation perplexity is {valid_ppl} after epoch "
                                 f"{epoch}; lower the learning rate; no model was written")
        record.epochs.append({"epoch": epoch, "lr": lr, "train_perplexity": round(train_ppl, 2),
                              "valid_perplexity": round(valid_ppl, 2)})
        log(f"epoch {epoch:2d}  lr {lr:.4g}  train perplexity {train_ppl:8.2f}  "
            f"valid perplexity {valid_ppl:8.2f}")
    record.test_perplexity = round(perplexity(model, corpus.test, config.num_steps), 2)
    record.seconds = time.perf_counter() - start
    log(f"test perplexity {record.test_perplexity:.2f}  ({record.seconds / 60:.1f} min)")
    return model.eval(), record


def check_config(config: LMConfig) -> None:
    """The limits every text checkpoint must keep, checked before any tensor is allocated (a corpus
    with millions of distinct words would make a model that cannot be stored or loaded)."""
    from .checkpoint import CONFIG_SCHEMA

    for name, spec in CONFIG_SCHEMA.items():
        problem = spec.problem(getattr(config, name))
        if problem:
            hint = " (the number of distinct words in ptb.train.txt)" if name == "vocab_size" else ""
            raise IGInputError(f"training setting {name} = {getattr(config, name)!r}{hint} is out of range: "
                               f"it {problem}")


def _train_epoch(model: WordLSTM, rows: torch.Tensor, config: LMConfig, lr: float, desc: str,
                 show_progress: bool) -> float:
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    state = None
    total_loss, total_words = 0.0, 0
    bar = progress(bptt_chunks(rows, config.num_steps), total=num_chunks(rows, config.num_steps),
                   desc=desc, enabled=show_progress)
    for chunk, (inputs, targets) in enumerate(bar):
        state = None if state is None else tuple(s.detach() for s in state)
        logits, state = model(inputs, state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        if not torch.isfinite(loss):
            first = chunk * config.num_steps
            raise NonFiniteError(f"training diverged: the loss became {loss.item()} in {desc}, at steps "
                                 f"{first}–{first + inputs.size(1) - 1} of each of the {rows.size(0)} batch "
                                 f"rows; lower the learning rate or the clip norm; no model was written")
        optimizer.zero_grad()
        (loss * inputs.size(1)).backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        total_loss += loss.item() * targets.numel()
        total_words += targets.numel()
        bar.set_postfix(f"perplexity {_exp(total_loss / total_words):.1f}")
    return _exp(total_loss / total_words)


@torch.no_grad()
def perplexity(model: WordLSTM, ids: torch.Tensor, num_steps: int, batch_size: int = EVAL_BATCH) -> float:
    """exp(mean next-word cross-entropy) over the stream, the state carried across chunks."""
    was_training = model.training
    model.eval()
    state = None
    total_loss, total_words = 0.0, 0
    for inputs, targets in bptt_chunks(batchify(ids, batch_size), num_steps):
        logits, state = model(inputs, state)
        total_loss += nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                                  reduction="sum").item()
        total_words += targets.numel()
    model.train(was_training)
    return _exp(total_loss / total_words)


def _exp(x: float) -> float:
    """``exp`` that gives ``inf`` instead of raising OverflowError (a diverged perplexity)."""
    return math.inf if x > 700 else math.exp(x)
