"""From a context and a target request to token ids, words and the log-probabilities to explain.

Words come from the tokenizer's character offsets: a word is a run of tokens with no whitespace
between them ("market," is one word of two tokens), so subword attributions can be summed per
word. A *readout* is one log-probability the score reads: the next token (default), each token
of a target string, the contrast token (with sign −1), or each greedily generated token.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from igkit.errors import IGInputError

from .hf_model import CausalLM


@dataclass
class TokenContext:
    """The attributed tokens: ids, their text, and the word each belongs to."""

    text: str
    ids: list[int]
    tokens: list[str]
    word_index: list[int]
    words: list[str]
    truncated_from: int | None = None
    #: how many of the attributed tokens are the prompt (the rest were generated)
    prompt_tokens: int = 0


@dataclass
class Readouts:
    """What the score reads: ``signs[k]`` × log p(``token_ids[k]``) at the ``back[k]``-th position from
    the end (1: the last) of sequence ``sequence[k]``; ``continuation`` are tokens fed after the
    attributed ones and not attributed (the first tokens of a target string). A contrast of several
    tokens reads a second sequence, the context followed by ``contrast_continuation`` (the shorter
    of the two is padded at its end, which a causal model's earlier positions never see)."""

    token_ids: list[int]
    signs: list[float]
    continuation: list[int]
    labels: list[str]
    kind: str  # "next", "target", "contrast", "generate"
    back: list[int] = field(default_factory=list)
    contrast_continuation: list[int] | None = None
    sequence: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.back:  # one token per position, the last K positions in order
            self.back = list(range(len(self.token_ids), 0, -1))
        if not self.sequence:
            self.sequence = [0] * len(self.token_ids)

    @property
    def continuations(self) -> list[list[int]]:
        """The tokens fed after the context, one list per sequence the score reads."""
        if self.contrast_continuation is None:
            return [self.continuation]
        return [self.continuation, self.contrast_continuation]

    def side(self, sign: float) -> str:
        """The readouts of one sign as text: the target's (+1) or the contrast's (−1) tokens."""
        return "".join(label for label, s in zip(self.labels, self.signs) if s == sign)


def tokenize_context(lm: CausalLM, text: str, last_tokens: int | None = None, room: int = 0) -> TokenContext:
    """The context's tokens with offsets and words; ``room`` tokens are fed after it (generated ones).

    A context longer than the model's positions is an error that says so, unless ``last_tokens``
    asks to explain only the last N tokens.
    """
    encoded = lm.tokenizer(text, return_offsets_mapping=True)
    ids, offsets = list(encoded["input_ids"]), [tuple(o) for o in encoded["offset_mapping"]]
    if not ids or not text.strip():
        raise IGInputError(f"the context {text!r} has no tokens; give the text before the word to predict")
    truncated = None
    if last_tokens is not None and len(ids) > last_tokens:
        truncated, ids, offsets = len(ids), ids[-last_tokens:], offsets[-last_tokens:]
    limit = lm.max_positions
    if limit is not None and room >= limit:
        raise IGInputError(f"--generate {room + 1} does not fit in the {limit} positions {lm.name} can read; "
                           f"generate fewer tokens")
    if limit is not None and len(ids) + room > limit:
        need = f" plus {room} generated token(s) fed back" if room else ""
        raise IGInputError(f"the context is {len(ids)} tokens{need}, more than the {limit} positions "
                           f"{lm.name} can read; pass --last-tokens {limit - room} to explain only the last "
                           f"{limit - room} tokens (Python: last_tokens=...)")
    tokens = [lm.token_text(i) for i in ids]
    word_index, words = words_from_offsets(text, offsets, tokens)
    return TokenContext(text, ids, tokens, word_index, words, truncated, len(ids))


def words_from_offsets(text: str, offsets: list[tuple[int, int]], tokens: list[str]
                       ) -> tuple[list[int], list[str]]:
    """Each token's word index and the words: a new word starts where whitespace separates a token
    from the one before it; special tokens (empty offsets) are words of their own."""
    word_index: list[int] = []
    spans: list[list[int]] = []
    previous_end: int | None = None
    for (start, end), token in zip(offsets, tokens):
        special = start == end
        if special or previous_end is None or not spans:
            starts_word = True
        elif start < previous_end:  # one character split over several byte-level tokens
            starts_word = False
        else:
            starts_word = any(c.isspace() for c in text[previous_end:start + 1])
        if starts_word:
            spans.append([start, end, special])
        else:
            spans[-1][1] = max(spans[-1][1], end)
        word_index.append(len(spans) - 1)
        previous_end = None if special else end
    words = [tokens[word_index.index(i)] if special else text[start:end].strip()
             for i, (start, end, special) in enumerate(spans)]
    return word_index, words


def continuation_ids(lm: CausalLM, context: str, target: str) -> list[int]:
    """Token ids of ``target`` as it continues ``context``: a space goes between them unless the
    context ends with whitespace or the target starts with it (GPT-2's " than", not "than")."""
    special = getattr(lm.tokenizer, "all_special_tokens", [])
    if target in special:  # e.g. the end-of-text token of a corpus position
        return [int(lm.tokenizer.convert_tokens_to_ids(target))]
    glue = "" if not context or context[-1:].isspace() or target[:1].isspace() else " "
    ids = lm.tokenizer(glue + target, add_special_tokens=False)["input_ids"]
    if not ids:
        raise IGInputError(f"the target {target!r} tokenizes to nothing; give a word or a few words")
    return list(ids)


def next_token_logits(lm: CausalLM, ids: list[int]) -> Any:
    """Logits of the token after ``ids`` (no gradient, no cache kept, the last position only: the
    vocabulary's logits at every position of a long context would cost more than the model)."""
    import torch

    with torch.no_grad():
        batch = torch.tensor([ids], device=lm.device)
        try:
            return lm.model(input_ids=batch, use_cache=False, logits_to_keep=1).logits[0, -1].float()
        except TypeError:  # an older or custom model without logits_to_keep: all positions
            return lm.model(input_ids=batch, use_cache=False).logits[0, -1].float()


def greedy_continuation(lm: CausalLM, ids: list[int], tokens: int) -> list[int]:
    """``tokens`` tokens generated greedily after ``ids`` (the highest-probability token each step)."""
    generated: list[int] = []
    for _ in range(tokens):
        generated.append(int(next_token_logits(lm, ids + generated).argmax()))
    return generated


def readouts_for(lm: CausalLM, context: TokenContext, *, target: str | None, contrast: str | None,
                 generate: int | None) -> tuple[TokenContext, Readouts]:
    """The readouts of one item, and the attributed tokens (with ``generate``, the prompt plus the
    generated tokens before the last, so each generated token is explained over all before it)."""
    if generate:
        if target is not None or contrast is not None:
            raise IGInputError("--generate explains the model's own continuation; it cannot be combined "
                               "with --target or --contrast")
        generated = greedy_continuation(lm, context.ids, generate)
        extended = extend_context(lm, context, generated[:-1])
        return extended, Readouts(generated, [1.0] * len(generated), [], [lm.token_text(t) for t in generated],
                                  "generate")
    if target is None:
        chosen = [int(next_token_logits(lm, context.ids).argmax())]
    else:
        chosen = continuation_ids(lm, context.text, target)
    if contrast is not None:
        return context, contrast_readouts(lm, context, chosen, continuation_ids(lm, context.text, contrast))
    if lm.max_positions is not None and len(context.ids) + len(chosen) - 1 > lm.max_positions:
        raise IGInputError(f"the context ({len(context.ids)} tokens) and the target ({len(chosen)} tokens) "
                           f"do not fit in {lm.max_positions} positions; pass --last-tokens "
                           f"{lm.max_positions - len(chosen) + 1}")
    return context, Readouts(chosen, [1.0] * len(chosen), chosen[:-1], [lm.token_text(t) for t in chosen],
                             "next" if target is None else "target")


def contrast_readouts(lm: CausalLM, context: TokenContext, chosen: list[int], foil: list[int]) -> Readouts:
    """log p(chosen) − log p(foil), each the summed log-probability of its tokens after the context
    (teacher-forced: each token given the context and the tokens of its own string before it)."""
    if foil == chosen:
        raise IGInputError("the contrast is the same tokens as the target; give another word")
    longest = max(len(chosen), len(foil))
    if lm.max_positions is not None and len(context.ids) + longest - 1 > lm.max_positions:
        raise IGInputError(f"the context ({len(context.ids)} tokens) and the longer of the target and the "
                           f"contrast ({longest} tokens) do not fit in {lm.max_positions} positions; pass "
                           f"--last-tokens {lm.max_positions - longest + 1}")
    # both sequences are padded to the context + (longest − 1) tokens; token k of either string is
    # read at the context's last position + k
    back = [longest - k for k in range(len(chosen))] + [longest - k for k in range(len(foil))]
    # one sequence serves both when they feed the same tokens (two single tokens: the context alone)
    second = None if foil[:-1] == chosen[:-1] else foil[:-1]
    return Readouts(chosen + foil, [1.0] * len(chosen) + [-1.0] * len(foil), chosen[:-1],
                    [lm.token_text(t) for t in chosen + foil], "contrast", back=back,
                    contrast_continuation=second,
                    sequence=[0] * len(chosen) + [0 if second is None else 1] * len(foil))


def extend_context(lm: CausalLM, context: TokenContext, generated: list[int]) -> TokenContext:
    """The context followed by generated tokens (attributed too); each generated token that starts
    with whitespace begins a new word."""
    tokens = [lm.token_text(t) for t in generated]
    word_index, words = list(context.word_index), list(context.words)
    for token in tokens:
        if token[:1].isspace() or not words:
            words.append(token.strip())
        else:
            words[-1] += token
        word_index.append(len(words) - 1)
    return TokenContext(context.text + "".join(tokens), context.ids + generated, context.tokens + tokens,
                        word_index, words, context.truncated_from, context.prompt_tokens)
