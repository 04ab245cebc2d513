"""Case 3's larger models: GoogLeNet with random weights, and the shipped small GPT-2.

GoogLeNet (torchvision, ``weights=None``, ``init_weights=True``, eval mode): its random
weights barely let the image through (F(x) equals F(black) to about four digits), so the
completeness check is judged by the absolute floor, for Captum's doubling as for igkit, and
the case measures what each pays on a model whose path says almost nothing. The small GPT-2
(``plugins/text/models/ptb_gpt2``, the ``igkit[transformers]`` extra) is attributed like the
PTB LSTM: the probability of the next token it is surest of, from the context's token
embeddings, zero-embedding baseline, logits at the last position only for both contenders.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .convergence import Problem, Workload
from .networks import googlenet

WINDOW = 20


def googlenet_workload(n_examples: int, size: int) -> Workload:
    """Random images (seeded), softmax probability of the class each is given most, black baseline."""
    model = googlenet()

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(x), dim=1)

    images = torch.rand(n_examples, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        top = forward(images).argmax(1).tolist()
    problems = [Problem((images[i:i + 1],), (torch.zeros_like(images[i:i + 1]),), top[i])
                for i in range(n_examples)]
    return Workload(f"GoogLeNet random weights {size}px", forward, problems,
                    {"model": "torchvision googlenet(weights=None, aux_logits=False, init_weights=True), seed 0",
                     "image_size": size})


def gpt2_workload(ptb_dir: Path, n_examples: int) -> Workload:
    """The shipped small GPT-2's surest next-token predictions on PTB validation text."""
    try:
        from igkit.plugins.text.hf_model import load_causal_lm
        lm = load_causal_lm("ptb-gpt2")
    except ImportError as exc:
        raise ImportError(f"the small GPT-2 needs the transformers extra (pip install -e '.[transformers]'): "
                          f"{exc}") from exc
    model, embedding = lm.model.eval(), lm.embedding

    def forward(embeds: torch.Tensor) -> torch.Tensor:
        logits = model(inputs_embeds=embeds, use_cache=False, logits_to_keep=1).logits[:, -1]
        return torch.softmax(logits.float(), dim=-1)

    text = (ptb_dir / "ptb.valid.txt").read_text()[: 200 * n_examples * WINDOW]
    ids = torch.tensor(lm.tokenizer(text)["input_ids"])
    starts = torch.arange(0, ids.numel() - WINDOW - 1, WINDOW)[: 50 * n_examples]
    contexts = torch.stack([ids[s:s + WINDOW] for s in starts.tolist()])
    with torch.no_grad():
        embeds = embedding(contexts)
        probabilities = forward(embeds)
    best, words = probabilities.max(1)
    chosen = torch.argsort(best, descending=True)[:n_examples].tolist()
    problems = [Problem((embeds[i:i + 1],), (torch.zeros_like(embeds[i:i + 1]),), int(words[i]))
                for i in chosen]
    return Workload("small GPT-2 next token", forward, problems,
                    {"model": "plugins/text/models/ptb_gpt2", "window_tokens": WINDOW,
                     "probabilities": best[chosen].tolist()})
