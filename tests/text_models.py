"""A tiny untrained word LSTM with a PTB-like vocabulary, shared by the text tests."""
from __future__ import annotations

from pathlib import Path

import torch

from igkit.plugins.text.checkpoint import LanguageModel, save_language_model
from igkit.plugins.text.model import LMConfig, WordLSTM
from igkit.plugins.text.vocab import Vocabulary

WORDS = ["<unk>", "<eos>", "the", "stock", "market", "fell", "rose", "more", "than", "shares", "N", "mr."]


def save_tiny_language_model(path: Path) -> Path:
    """Write a seeded 2-layer, 8-unit LSTM over :data:`WORDS` to ``path`` (a checkpoint name)."""
    torch.manual_seed(0)
    lm = LanguageModel(WordLSTM(LMConfig(vocab_size=len(WORDS), hidden=8, layers=2, init_scale=0.5)),
                       Vocabulary(WORDS))
    save_language_model(lm, path)
    return path
