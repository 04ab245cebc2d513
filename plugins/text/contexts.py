"""What the user gives (sentences, a file of lines, a corpus slice) as a stream of items, and an
item made into model input once the vocabulary is known.

Reading needs no model: :func:`read_contexts` streams :class:`~igkit.domain.Item` objects whose
value is a :class:`ContextSpec`; :func:`parse_context` tokenises one with the model's vocabulary
(in :func:`~igkit.plugins.text.lstm_domain.prepare_lstm_item`). Files are read
through :mod:`igkit.io.records`: UTF-8 with or without a byte-order mark, LF or CRLF; any other
encoding is an error naming the file and the line.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from igkit.domain import BadItem, Item, content_digest
from igkit.errors import IGInputError
from igkit.io.records import read_lines

from .vocab import EOS, UNK, Vocabulary, tokenize

#: contexts longer than this are cut to their last ``max_words`` words (``--max-words``): the
#: shipped LSTM was trained on 20-word windows (truncated BPTT); words further back barely move
#: its prediction, while each one adds to the cost of every path point
DEFAULT_MAX_WORDS = 200
DEFAULT_WINDOW = 20


@dataclass(frozen=True)
class ContextSpec:
    """One item as read: free ``text`` to tokenise, or corpus ``tokens`` taken as they are."""

    text: str
    target: str | None = None
    tokens: tuple[str, ...] | None = None


@dataclass
class Context:
    """One context in the model's vocabulary: its tokens, which were unknown, the next word asked for."""

    text: str
    tokens: list[str]
    ids: list[int]
    oov: list[bool]
    target: int | None = None
    truncated_from: int | None = None

    @property
    def unknown_words(self) -> list[str]:
        return [t for t, unknown in zip(self.tokens, self.oov) if unknown and t != UNK]


def read_contexts(sources: Sequence[str | Path], *, target: str | None = None, every_position: bool = False,
                  window: int = DEFAULT_WINDOW, start: int = 0, limit: int | None = None,
                  max_words: int = DEFAULT_MAX_WORDS) -> Iterator[Item | BadItem]:
    """Items in order: each ``str`` is one context ("argument N"); each :class:`~pathlib.Path` a file
    with one context per line ("FILE line N"; ``CONTEXT<TAB>TARGET`` names the target), or with
    ``every_position`` a tokenised corpus whose every position is one item ("FILE position N");
    an :class:`~igkit.domain.Item` or :class:`~igkit.domain.BadItem` is passed on as it is."""
    if every_position:
        if window > max_words:
            raise IGInputError(f"--window {window} is more than --max-words {max_words}; raise "
                               f"--max-words or use a shorter window")
        if any(not isinstance(s, Path) for s in sources):
            raise IGInputError("--every-position explains the positions of a corpus file: give it "
                               "with --input FILE, not as CONTEXT arguments")
    number = 0
    for source in sources:
        if isinstance(source, (Item, BadItem)):  # already read (igkit text score-methods)
            yield source
            continue
        if isinstance(source, Path):
            if every_position:
                yield from read_positions(source, window, start, limit)
            else:
                yield from read_context_file(source, target)
            continue
        number += 1
        yield context_item(f"argument {number}", str(source), target)


def context_item(source: str, text: str, target: str | None) -> Item | BadItem:
    """An item for free text, or a :class:`BadItem` when it has no words at all."""
    if not tokenize(text):
        return BadItem(source, f"the context {text!r} has no words; give at least one word before the "
                               f"word to predict, e.g. \"the shareholders claimed more\"")
    if target is not None and not target.strip():
        target = None
    return Item(source=source, value=ContextSpec(text, target), name=text,
                digest=content_digest("text", text, target or ""))


def read_context_file(path: Path, target: str | None = None) -> Iterator[Item | BadItem]:
    """One item per non-empty line; ``CONTEXT<TAB>TARGET`` overrides ``target`` for that line."""
    found = False
    for number, line in read_lines(path):
        if not line.strip():
            continue
        found = True
        text, _, line_target = line.partition("\t")
        yield context_item(f"{path} line {number}", text, line_target.strip() or target)
    if not found:
        raise IGInputError(f"{path} has no non-empty lines; write one context per line")


def corpus_tokens(path: Path) -> Iterator[str]:
    """The corpus's words as written (split at whitespace), ``<eos>`` after every non-empty line:
    Mikolov's PTB files are read this way for training too."""
    for _, line in read_lines(path):
        words = line.split()
        if words:
            yield from words
            yield EOS


def read_positions(path: Path, window: int, start: int = 0, limit: int | None = None
                   ) -> Iterator[Item]:
    """Every position of a corpus slice: the ``window`` words before it, targeting the word there.

    Positions count tokens from 0; the first is ``window + start``; at most ``limit`` are read.
    """
    recent: deque[str] = deque(maxlen=window)
    count = 0
    tokens = 0
    for position, token in enumerate(corpus_tokens(path)):
        tokens += 1
        if position >= window + start and len(recent) == window:
            if limit is not None and count >= limit:
                return
            words = tuple(recent)
            yield Item(source=f"{path} position {position}",
                       value=ContextSpec(" ".join(words), token, words), name=f"position {position}",
                       digest=content_digest("tokens", *words, "target", token, f"window={window}"))
            count += 1
        recent.append(token)
    if count == 0:
        raise IGInputError(f"{path} has {tokens} tokens; --window {window} and --start {start} need at "
                           f"least {window + start + 1}")


def parse_context(spec: ContextSpec, vocab: Vocabulary, max_words: int = DEFAULT_MAX_WORDS) -> Context:
    """Tokenise (free text, PTB-style) or take the tokens, keep the last ``max_words``, look them up.

    Unknown words read as ``<unk>`` (marked ``oov``); a named target must be a vocabulary word,
    except a corpus word, which is looked up as it is (``<unk>`` if unknown).
    """
    if spec.tokens is None:
        tokens = tokenize(spec.text, vocab)
        if not tokens:
            raise IGInputError(f"the context {spec.text!r} has no words")
        target = vocab.id_of(spec.target) if spec.target is not None else None
    else:
        tokens = list(spec.tokens)
        target = vocab.encode([spec.target])[0] if spec.target is not None else None
    truncated = None
    if len(tokens) > max_words:
        truncated, tokens = len(tokens), tokens[-max_words:]
    return Context(spec.text, tokens, vocab.encode(tokens), [t not in vocab or t == UNK for t in tokens],
                   target, truncated)


def positions_of(path: str | Path, vocab: Vocabulary, window: int = DEFAULT_WINDOW, start: int = 0,
                 limit: int | None = None) -> Iterable[Context]:
    """The contexts of :func:`read_positions` in ``vocab`` (for scripts such as the benchmarks)."""
    for item in read_positions(Path(path), window, start, limit):
        yield parse_context(item.value, vocab, window)
