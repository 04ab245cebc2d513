"""The word-level LSTM language model of Zaremba, Sutskever & Vinyals (2014)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LMConfig:
    """Architecture and training schedule; stored in the checkpoint and checked on load."""

    vocab_size: int = 10000
    hidden: int = 200
    layers: int = 2
    dropout: float = 0.0
    init_scale: float = 0.1
    num_steps: int = 20
    batch_size: int = 20
    lr: float = 1.0
    lr_decay: float = 0.5
    decay_after: int = 4
    max_grad_norm: float = 5.0
    epochs: int = 13

    def to_dict(self) -> dict:
        return asdict(self)


#: Zaremba et al.'s non-regularised small model and the medium one with dropout
CONFIGS = {
    "small": LMConfig(),
    "medium": LMConfig(hidden=650, dropout=0.5, init_scale=0.05, num_steps=35, lr_decay=1 / 1.2,
                       decay_after=6, epochs=39),
}


class WordLSTM(nn.Module):
    """Embedding → stacked LSTM → linear decoder over the vocabulary (no weight tying)."""

    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.hidden)
        self.drop = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(config.hidden, config.hidden, config.layers, batch_first=True,
                            dropout=config.dropout if config.layers > 1 else 0.0)
        self.decoder = nn.Linear(config.hidden, config.vocab_size)
        for p in self.parameters():
            nn.init.uniform_(p, -config.init_scale, config.init_scale)

    def forward(self, ids: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``ids [batch, time]`` → logits ``[batch, time, vocab]`` and the final LSTM state."""
        out, state = self.lstm(self.drop(self.embedding(ids)), state)
        return self.decoder(self.drop(out)), state
