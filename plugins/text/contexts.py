"""Turning what the user typed (a sentence, a file of lines, a corpus slice) into model input."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from igkit.errors import IGInputError

from .vocab import UNK, Vocabulary, closest_words, tokenize


@dataclass
class Context:
    """One context to explain: its PTB tokens, which were unknown, and the next word asked for."""

    name: str
    tokens: list[str]
    ids: list[int]
    oov: list[bool]
    target: int | None = None

    @property
    def unknown_words(self) -> list[str]:
        return [t for t, unknown in zip(self.tokens, self.oov) if unknown]


def parse_context(text: str, vocab: Vocabulary, target: str | None = None, name: str | None = None
                  ) -> Context:
    """Tokenise ``text`` PTB-style; unknown words read as ``<unk>``; ``target`` must be a known word."""
    tokens = tokenize(text, vocab)
    if not tokens:
        raise IGInputError(f"the context {text!r} has no words; give at least one word before the "
                           f"word to predict, e.g. \"the shareholders claimed more\"")
    oov = [t not in vocab or t == UNK for t in tokens]
    target_id = vocab.id_of(target) if target is not None else None
    return Context(name or text, tokens, vocab.encode(tokens), oov, target_id)


def unknown_word_warning(contexts: list[Context], vocab: Vocabulary) -> str | None:
    """One line naming the out-of-vocabulary words of all contexts and what they were read as."""
    unknown = [t for t in dict.fromkeys(w for c in contexts for w in c.unknown_words) if t != UNK]
    if not unknown:
        return None
    where = repr(contexts[0].name) if len(contexts) == 1 else f"{len(contexts)} contexts"
    hints = []
    for word in unknown:
        close = closest_words(word, vocab, n=3)
        hints.append(f"{word} (close: {', '.join(close)})" if close else word)
    return (f"warning: {len(unknown)} word(s) of {where} are not in the model's vocabulary and "
            f"are read as <unk>: {'; '.join(hints)}")


def read_context_lines(path: str | Path) -> list[tuple[str, str | None]]:
    """(context, target) per non-empty line of ``path``; ``CONTEXT<TAB>TARGET`` names the target."""
    lines = _read_text(path).splitlines()
    items = []
    for line in lines:
        if not line.strip():
            continue
        text, _, target = line.partition("\t")
        items.append((text, target.strip() or None))
    if not items:
        raise IGInputError(f"{path} has no non-empty lines; write one context per line")
    return items


def corpus_positions(path: str | Path, vocab: Vocabulary, window: int, start: int = 0,
                     limit: int | None = None) -> list[Context]:
    """Every position of a PTB-style corpus slice: the ``window`` words before it, and the word there.

    Lines end with ``<eos>`` as in training; the corpus word is the target, so
    each row explains the probability the model gave to what actually came next.
    """
    if window < 1:
        raise IGInputError(f"--window must be at least 1, got {window}")
    tokens = [t for line in _read_text(path).splitlines() if line.strip()
              for t in tokenize(line, vocab) + ["<eos>"]]
    if len(tokens) <= window:
        raise IGInputError(f"{path} has {len(tokens)} tokens; need more than --window {window}")
    stop = len(tokens) if limit is None else min(len(tokens), window + start + limit)
    ids = vocab.encode(tokens)
    contexts = []
    for pos in range(window + start, stop):
        words = tokens[pos - window:pos]
        contexts.append(Context(f"position {pos}", words, ids[pos - window:pos],
                                [t not in vocab for t in words], ids[pos]))
    if not contexts:
        raise IGInputError(f"--start {start} is past the end of {path} ({len(tokens)} tokens)")
    return contexts


def _read_text(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise IGInputError(f"input file {path} not found")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise IGInputError(f"{path} is not UTF-8 text ({exc.reason})") from exc
