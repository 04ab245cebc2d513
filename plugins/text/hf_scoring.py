"""Deletion and insertion curves of a transformers causal LM (``igkit text score-methods --model``).

The same measure as the LSTM's (:mod:`igkit.plugins.text.scoring`): the units a method ranks first
(tokens, or words: all tokens of a word together) are replaced, and the probability of the explained
tokens is read again, p_k / p(full context). The two replacements are the zero embedding (IG's
baseline) and the end-of-text token's embedding (the transformer's counterpart of ``<unk>``: a real
token no method integrates toward). All points of one context go through the model in passes sized
by ``--max-memory``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .hf_explanation import CausalExplanation, sum_by_word


def unit_values(exp: CausalExplanation, token_values: np.ndarray, units: str) -> tuple[np.ndarray, list[str]]:
    """A method's values per unit (summed over a word's tokens) and the units' labels."""
    if units == "tokens":
        return np.asarray(token_values, dtype=float), list(exp.context.tokens)
    return sum_by_word(token_values, exp.context.word_index, len(exp.context.words)), list(exp.context.words)


@torch.no_grad()
def causal_curves(exp: CausalExplanation, rankings: dict[str, np.ndarray], units: str) -> dict[str, Any]:
    """Per method, p_k / p(full) over k = 0 … U units replaced, deletion and insertion, with the zero
    embedding ("zero") and the end-of-text embedding ("unk" keys, as in the LSTM's table)."""
    prepared = exp.attribution.prepared
    lm = prepared.context["lm"]
    x = prepared.inputs[0]                                                           # [T, D]
    owner = torch.tensor(exp.context.word_index if units == "words" else range(x.shape[0]))
    count = int(owner.max()) + 1
    eos = lm.tokenizer.eos_token_id
    fills = {"zero": torch.zeros_like(x[0]),
             "unk": lm.embedding.weight[eos].float() if eos is not None else torch.zeros_like(x[0])}
    methods = list(rankings)
    order = torch.tensor(np.stack([rankings[m] for m in methods]))                   # [M, U]
    rank_of = torch.empty_like(order)
    rank_of.scatter_(1, order, torch.arange(count).expand(len(methods), count))
    token_rank = rank_of[:, owner]                                                   # [M, T]
    top_k = token_rank.unsqueeze(1) < torch.arange(count + 1).view(1, -1, 1)         # [M, U+1, T]
    points = []
    for fill in fills.values():
        for kind in ("deletion", "insertion"):
            keep = ~top_k if kind == "deletion" else top_k
            points.append(torch.where(keep.unsqueeze(-1).to(x.device), x, fill))
    batch = torch.stack(points).reshape(-1, *x.shape)
    scores = torch.cat([_score(prepared, chunk) for chunk in batch.split(max(1, prepared.batch_size or 1))])
    full = float(_score(prepared, x.unsqueeze(0))[0])
    ratios = torch.exp(scores.double() - full).reshape(len(fills), 2, len(methods), count + 1).cpu().numpy()
    out: dict[str, Any] = {"p_full": float(np.exp(full))}
    for j, m in enumerate(methods):
        out[m] = {f"{kind}_{fill}": ratios[f, k, j].tolist()
                  for f, fill in enumerate(fills) for k, kind in enumerate(("deletion", "insertion"))}
    return out


def _score(prepared: Any, embeds: torch.Tensor) -> torch.Tensor:
    """The explained score (summed signed log-probability) of each row of ``embeds``."""
    args = tuple(a.expand(embeds.shape[0], *a.shape[1:]) for a in prepared.forward_args)
    return prepared.forward(embeds, *args)[:, -1]
