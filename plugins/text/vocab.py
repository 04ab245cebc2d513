"""The Penn Treebank vocabulary, and turning a user's sentence into PTB-style tokens.

Mikolov's PTB files are lower case, with numbers replaced by ``N``, most
punctuation removed and clitics split off (``does n't``, ``company 's``). A
context typed by a user must be written the same way, or every word would be
out of vocabulary.
"""
from __future__ import annotations

import difflib
import hashlib
import re
from collections import Counter
from typing import Iterable, Sequence

from igkit.errors import IGInputError

UNK = "<unk>"
EOS = "<eos>"

_NUMBER = re.compile(r"^[-+]?(\d[\d,]*\.?\d*|\.\d+)(s|th|st|nd|rd)?$")
_CLITICS = re.compile(r"(?i)(n't|'s|'re|'ve|'ll|'d|'m)$")
_EDGE_PUNCT = "\"'`,.;:!?()[]{}"


class Vocabulary:
    """Word ↔ id, in a fixed order so that checkpoints and data agree."""

    def __init__(self, words: Sequence[str]):
        if len(set(words)) != len(words):
            raise IGInputError("vocabulary has repeated words")
        if UNK not in words or EOS not in words:
            raise IGInputError(f"vocabulary must contain {UNK} and {EOS}")
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def from_tokens(cls, tokens: Iterable[str]) -> "Vocabulary":
        """Most frequent first, ties alphabetical: the same file always gives the same ids."""
        counts = Counter(tokens)
        counts.setdefault(UNK, 0)
        counts.setdefault(EOS, 0)
        return cls(sorted(counts, key=lambda w: (-counts[w], w)))

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Ids of ``tokens``; unknown words become ``<unk>`` (callers warn about them)."""
        unk = self.index[UNK]
        return [self.index.get(t, unk) for t in tokens]

    def id_of(self, word: str) -> int:
        """The id of a word the user named (a target); unknown → error with the closest words."""
        token = word.strip().lower()
        if _NUMBER.match(token):
            token = "N"
        if token not in self.index:
            close = difflib.get_close_matches(token, self.words, n=5, cutoff=0.6)
            hint = f"closest vocabulary words: {', '.join(close)}" if close else \
                "no vocabulary word is close (the model's JSON file lists them all)"
            raise IGInputError(f"target word {word!r} is not in the model's {len(self)}-word vocabulary; "
                               f"{hint}")
        return self.index[token]

    def fingerprint(self) -> str:
        """A short hash of the ordered word list (ids depend on the order)."""
        return hashlib.sha256("\n".join(self.words).encode()).hexdigest()[:16]


def tokenize(text: str, vocab: Vocabulary | None = None) -> list[str]:
    """PTB-style tokens of free text: lower case, numbers → ``N``, clitics split, punctuation dropped.

    Abbreviations that PTB keeps with their period (``mr.``, ``u.s.``, ``inc.``)
    keep it when ``vocab`` knows them.
    """
    tokens: list[str] = []
    for raw in text.replace("\u2019", "'").split():
        if raw in (UNK, EOS, "N"):
            tokens.append(raw)
            continue
        raw = raw.lower()
        if raw.startswith("$") and len(raw) > 1:
            tokens.append("$")
            raw = raw[1:]
        word = _strip_edges(raw, vocab)
        if not word:
            continue
        clitic = _CLITICS.search(word)
        if clitic and clitic.start() > 0:
            tokens.extend(_word_or_number(word[:clitic.start()]) + [clitic.group(1)])
        else:
            tokens.extend(_word_or_number(word))
    return tokens


def closest_words(word: str, vocab: Vocabulary, n: int = 5) -> list[str]:
    """Vocabulary words spelled most like ``word`` (for warnings about unknown words)."""
    return difflib.get_close_matches(word, vocab.words, n=n, cutoff=0.6)


def _strip_edges(raw: str, vocab: Vocabulary | None) -> str:
    kept_period = raw.strip(_EDGE_PUNCT.replace(".", "")).lstrip(".")
    if vocab is not None and kept_period in vocab:
        return kept_period
    return raw.strip(_EDGE_PUNCT)


def _word_or_number(word: str) -> list[str]:
    if _NUMBER.match(word):
        return ["N"]
    if word.endswith("%") and _NUMBER.match(word[:-1]):
        return ["N"]  # Mikolov's files dropped the % sign with the other punctuation
    return [word] if word else []
