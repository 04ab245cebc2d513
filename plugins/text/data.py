"""Reading Mikolov's Penn Treebank files and cutting them into truncated-BPTT batches."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from igkit.errors import IGInputError
from igkit.io.records import read_lines as read_file_lines

from .vocab import EOS, Vocabulary

SPLITS = ("train", "valid", "test")
PTB_FILES = {split: f"ptb.{split}.txt" for split in SPLITS}


@dataclass
class Corpus:
    """The three splits as flat id tensors (sentences joined by ``<eos>``), and their vocabulary."""

    vocab: Vocabulary
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor


def read_lines(path: Path) -> list[list[str]]:
    """Whitespace tokens per line, each line ending in ``<eos>`` as in Mikolov's setup (UTF-8 with
    or without a byte-order mark; another encoding is an error naming the file and line)."""
    return [line.split() + [EOS] for _, line in read_file_lines(path) if line.strip()]


def load_ptb(data_dir: str | Path) -> Corpus:
    """The corpus in ``data_dir``; the vocabulary is built from the training split."""
    folder = Path(data_dir)
    paths = _expected_files(folder)
    splits = {split: [t for line in read_lines(p) for t in line] for split, p in paths.items()}
    vocab = Vocabulary.from_tokens(splits["train"])
    for split in ("valid", "test"):
        unknown = sorted(set(splits[split]) - set(vocab.words))
        if unknown:
            raise IGInputError(f"{paths[split]} has words that are not in ptb.train.txt "
                               f"(e.g. {', '.join(unknown[:5])}); Mikolov's PTB maps them to <unk> — "
                               f"is this the preprocessed Penn Treebank?")
    return Corpus(vocab, *(torch.tensor(vocab.encode(splits[s]), dtype=torch.long) for s in SPLITS))


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``[batch, steps]``: the stream cut into ``batch_size`` parallel rows (tail dropped)."""
    n = ids.numel() // batch_size
    if n < 2:
        raise IGInputError(f"{ids.numel()} tokens are too few for batches of {batch_size}")
    return ids[: n * batch_size].view(batch_size, n)


def bptt_chunks(rows: torch.Tensor, num_steps: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(input, next-word) pairs ``[batch, ≤num_steps]``, walking along the rows."""
    for start in range(0, rows.size(1) - 1, num_steps):
        length = min(num_steps, rows.size(1) - 1 - start)
        yield rows[:, start:start + length], rows[:, start + 1:start + 1 + length]


def num_chunks(rows: torch.Tensor, num_steps: int) -> int:
    """How many pairs :func:`bptt_chunks` yields (for the progress bar)."""
    return -(-(rows.size(1) - 1) // num_steps)


def _expected_files(folder: Path) -> dict[str, Path]:
    names = ", ".join(PTB_FILES.values())
    if not folder.is_dir():
        raise IGInputError(f"data directory {folder} does not exist; it must hold Mikolov's "
                           f"Penn Treebank files {names}")
    paths = {split: folder / name for split, name in PTB_FILES.items()}
    missing = [p.name for p in paths.values() if not p.exists()]
    if missing:
        raise IGInputError(f"{folder} lacks {', '.join(missing)}; expected {names}")
    for path in paths.values():  # a pipe or a folder is refused by the reader, naming the file
        if path.is_file() and path.stat().st_size == 0:
            raise IGInputError(f"{path} is empty; expected one tokenised sentence per line")
    return paths
