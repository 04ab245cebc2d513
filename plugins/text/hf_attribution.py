"""Integrated gradients of a causal LM's log-probabilities at its input token embeddings.

The token embeddings (``get_input_embeddings()``'s output) are scaled from a baseline to the
input and passed as ``inputs_embeds``; the model adds its own position embeddings (or rotary
positions) inside, so positions are never scaled. The score is a signed sum of log-probabilities
(:class:`~igkit.plugins.text.hf_inputs.Readouts`), read at the last K positions only
(``logits_to_keep``: a 50k-word vocabulary's logits at every position would dominate memory).
No key/value cache is kept, so path points are independent and can be chunked freely: each pass
holds at most as many path points as ``--max-memory`` allows (:mod:`.hf_memory`), with the
fewest transformer blocks checkpointed that make a point fit.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from igkit.domain import Prepared
from igkit.errors import IGInputError

from .hf_inputs import Readouts, TokenContext
from .hf_memory import checkpointed, plan_passes, transformer_blocks
from .hf_model import CausalLM


def log_prob_forward(lm: CausalLM, checkpointed_blocks: int = 0) -> Callable[..., torch.Tensor]:
    """``f(embeds [n, T, D], continuation [n, C] or [n, S, C], token_ids [n, K], signs [n, K],
    back [n, K], sequence [n, K])`` → ``[n, K + 1]``: each readout's signed log-probability, then
    their sum (the score explained). With S continuations every path point runs S sequences (the
    context followed by each), and readout k reads sequence ``sequence[k]`` (default 0). With
    ``checkpointed_blocks`` the first that many transformer blocks keep only their inputs for the
    backward pass (recomputed there)."""
    model, embedding = lm.model, lm.embedding
    blocks = transformer_blocks(model)[:checkpointed_blocks]

    def forward(embeds: torch.Tensor, continuation: torch.Tensor, token_ids: torch.Tensor,
                signs: torch.Tensor, back: torch.Tensor, sequence: torch.Tensor | None = None) -> torch.Tensor:
        n = embeds.shape[0]
        following = continuation if continuation.dim() == 3 else continuation.unsqueeze(1)  # [n, S, C]
        count = following.shape[1]
        if count > 1:
            embeds = embeds.repeat_interleave(count, dim=0)
        if following.shape[2]:
            extra = embedding(following.reshape(n * count, -1)).to(embeds.dtype)
            embeds = torch.cat([embeds, extra], dim=1)
        keep = int(back.max())
        with checkpointed(blocks):
            logits = _logits(model, embeds, keep)[:, -keep:].float()
        logits = logits.reshape(n, count * keep, logits.shape[-1])  # sequence-major rows
        row = (keep - back) + (0 if sequence is None else sequence * keep)
        rows = logits.gather(1, row.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
        log_probs = torch.log_softmax(rows, dim=-1).gather(-1, token_ids.unsqueeze(-1)).squeeze(-1)
        signed = log_probs * signs
        return torch.cat([signed, signed.sum(-1, keepdim=True)], dim=-1)

    return forward


def _logits(model: Any, embeds: torch.Tensor, keep: int) -> torch.Tensor:
    try:
        return model(inputs_embeds=embeds, use_cache=False, logits_to_keep=keep).logits
    except TypeError:  # an older or custom model without logits_to_keep: all positions
        return model(inputs_embeds=embeds, use_cache=False).logits


def baseline_ids(lm: CausalLM, choice: str) -> int | None:
    """The token whose embedding is the baseline at every position (None: the zero embedding).

    ``zero``, ``eos``, ``pad``, or ``token:TEXT`` for a token of the user's (one token)."""
    tokenizer = lm.tokenizer
    if choice == "zero":
        return None
    if choice in ("eos", "pad"):
        token = getattr(tokenizer, f"{choice}_token_id", None)
        if token is None:
            raise IGInputError(f"the tokenizer has no {choice} token; use --baseline zero, "
                               f"{'pad' if choice == 'eos' else 'eos'} or token:TEXT")
        return int(token)
    if choice.startswith("token:"):
        ids = tokenizer(choice[len("token:"):], add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise IGInputError(f"--baseline {choice!r} is {len(ids)} tokens for this tokenizer; the baseline "
                               f"token must be exactly one (e.g. token:' the' or token:'.')")
        return int(ids[0])
    raise IGInputError(f"--baseline {choice!r}: choose zero, eos, pad or token:TEXT")


def prepare_causal(lm: CausalLM, context: TokenContext, readouts: Readouts, *, baseline: str = "zero",
                   max_memory: str | None = None, name: str = "") -> Prepared:
    """The runner's view of one item: embeddings, forward, baseline, target column, pass size."""
    device = lm.device
    ids = torch.tensor([context.ids], device=device)
    with torch.no_grad():
        embeds = lm.embedding(ids).detach().float()
    base_id = baseline_ids(lm, baseline)
    baselines = None
    if base_id is not None:
        with torch.no_grad():
            baselines = lm.embedding(torch.full_like(ids, base_id)).detach().float()
    forward_args = (continuation_tensor(lm, readouts),
                    torch.tensor([readouts.token_ids], dtype=torch.long, device=device),
                    torch.tensor([readouts.signs], dtype=torch.float32, device=device),
                    torch.tensor([readouts.back], dtype=torch.long, device=device),
                    torch.tensor([readouts.sequence], dtype=torch.long, device=device))
    label = (f"{readouts.side(1.0)} − {readouts.side(-1.0)}" if readouts.kind == "contrast"
             else "".join(readouts.labels))
    plan = plan_passes(lambda blocks: log_prob_forward(lm, blocks), lm.model, len(context.ids),
                       forward_args, max_memory, lm.memory_estimates)
    return Prepared(name=name, inputs=embeds, forward=log_prob_forward(lm, plan.checkpointed_blocks),
                    target=len(readouts.token_ids), scale="log-probability",
                    target_meaning=target_meaning(readouts), baseline_name=baseline_meaning(baseline),
                    baselines=baselines, forward_args=forward_args, label=label,
                    context={"lm": lm, "tokens": context, "readouts": readouts, "baseline": baseline,
                             "memory_plan": plan},
                    group=("transformers", len(context.ids), tuple(map(len, readouts.continuations)),
                           tuple(readouts.signs), tuple(readouts.back), tuple(readouts.sequence), baseline,
                           plan.checkpointed_blocks),
                    batch_size=plan.points)


def target_meaning(readouts: Readouts) -> str:
    """What the score is, in words, for every output's caption (natural log, nats)."""
    text, tokens = "".join(readouts.labels), len(readouts.token_ids)
    if readouts.kind == "next":
        return f"log-probability (nats) of {text!r}, the model's own next token"
    if readouts.kind == "contrast":
        return (f"summed log-probability of {readouts.side(1.0)!r} minus that of {readouts.side(-1.0)!r} after "
                f"the context (each token given the ones before it): why the first rather than the second")
    if readouts.kind == "generate":
        return (f"summed log-probability of the {tokens} tokens generated greedily ({text!r}), each given the "
                f"prompt and the tokens generated before it")
    return (f"summed log-probability of {text!r} ({tokens} token(s)) after the context, each given the "
            f"ones before it")


def baseline_meaning(choice: str) -> str:
    """The baseline in words: what every attributed token's embedding is scaled from."""
    if choice == "zero":
        return "all-zero token embeddings (positions kept)"
    if choice.startswith("token:"):
        return f"the embedding of {choice[len('token:'):]!r} at every position (positions kept)"
    return f"the {choice} token's embedding at every position (positions kept)"


def continuation_tensor(lm: CausalLM, readouts: Readouts) -> torch.Tensor:
    """``[1, C]`` the tokens fed after the context, or ``[1, 2, C]`` for a contrast of several tokens
    (the shorter one padded at its end with the end-of-text token, never read)."""
    sequences = readouts.continuations
    width = max(map(len, sequences))
    pad = lm.tokenizer.eos_token_id or 0
    padded = [ids + [pad] * (width - len(ids)) for ids in sequences]
    tensor = torch.tensor([padded], dtype=torch.long, device=lm.device).reshape(1, len(padded), width)
    return tensor[:, 0] if len(padded) == 1 else tensor


def per_readout(prepared: Prepared, result: Any, batch_size: int | None) -> torch.Tensor | None:
    """``[T, K]``: each readout's own attribution per token (None for a single readout), on the
    integration the item's total used (the same fixed rule, or the same tolerance), so the
    columns add up to the total within that tolerance (exactly, for a fixed rule)."""
    from igkit import integrated_gradients

    k = len(prepared.context["readouts"].token_ids)
    if k == 1:
        return None
    meta = result.meta
    if meta.get("tolerance") is None:
        keywords: dict[str, Any] = {"steps": int(result.steps), "method": result.method}
    else:
        keywords = {"tolerance": meta["tolerance"], "floor": meta["floor"], "max_steps": meta["max_steps"]}
    inputs = prepared.inputs.expand(k, *prepared.inputs.shape[1:])
    baselines = prepared.baselines
    args = tuple(a.expand(k, *a.shape[1:]) for a in prepared.forward_args)
    columns = integrated_gradients(prepared.forward, inputs, baselines, target=torch.arange(k),
                                   forward_args=args, batch_size=batch_size or prepared.batch_size, **keywords)
    return columns.attributions.sum(-1).detach().T.cpu()


def reference_embeddings(lm: CausalLM, length: int, contexts: int = 16, seed: int = 0) -> torch.Tensor:
    """``[contexts, length, D]``: embeddings of uniformly drawn vocabulary tokens (seeded per length),
    the references of expected_gradients / multi_baseline_ig."""
    weight = lm.embedding.weight
    generator = torch.Generator().manual_seed(seed * 1_000_003 + length)
    ids = torch.randint(0, weight.shape[0], (contexts * length,), generator=generator)
    return weight.detach()[ids.to(weight.device)].reshape(contexts, length, -1).float()
