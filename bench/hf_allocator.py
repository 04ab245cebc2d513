"""``python -m bench.hf_allocator TOKENS MODE``: CPU seconds and peak RSS of one checkpointed path
point of GPT-2 small (124M, randomly initialised) at TOKENS tokens, under a glibc allocator setting.

MODE is ``igkit`` (the fixed 128 KiB mmap threshold igkit sets, so freed activations go back to the
system), ``glibc`` (glibc's default, whose threshold rises after the first large free), or
``threshold:BYTES`` (a fixed threshold of that size). Run each MODE in its own process: the setting
is process-wide. Prints the CPU seconds of three points after a warm-up one, and the peak RSS.
Needs ``igkit[transformers]``; one torch thread.
"""
from __future__ import annotations

import resource
import sys
import time

import torch

from igkit.plugins.text.hf_memory import checkpointed, return_freed_tensors_to_the_system, transformer_blocks


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    tokens, mode = int(argv[0]), argv[1]
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(1)
    torch.manual_seed(0)
    if mode == "igkit":
        return_freed_tensors_to_the_system()
    elif mode.startswith("threshold:"):
        return_freed_tensors_to_the_system(int(mode.split(":")[1]))
    elif mode != "glibc":
        print(f"unknown MODE {mode!r}\n{__doc__}", file=sys.stderr)
        return 2
    model = GPT2LMHeadModel(GPT2Config(n_positions=max(1024, tokens + 1))).eval()
    model.requires_grad_(False)
    embeds = torch.randn(1, tokens, model.config.n_embd) * 0.02

    def point() -> None:
        x = embeds.clone().requires_grad_(True)
        with checkpointed(transformer_blocks(model)):
            score = model(inputs_embeds=x, use_cache=False, logits_to_keep=1).logits[0, -1, 5]
        torch.autograd.grad(score, x)

    point()
    seconds = []
    for _ in range(3):
        start = time.process_time()
        point()
        seconds.append(round(time.process_time() - start, 2))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    print(f"{tokens} tokens, {mode}: CPU seconds per checkpointed point {seconds}, peak RSS {peak:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
