"""Pass size chosen from measured cost against the memory limit alone, side by side.

    python -m bench.pass_size            # torch threads 1, 5 interleaved rounds

Batched IG (50 Gauss–Legendre steps, target 0, random inputs) on the small CNN (64 examples
of 24 px) and GoogLeNet with random weights (8 examples of 64 px): igkit as it is (its first
gradient passes probe 1/16, 1/4 and all of the memory limit, the rest use the cheapest per
point) and with probing off (every pass at the limit), alternating, the order swapped every
round; prints the medians, their ratio, the limit and the sizes chosen.
"""
from __future__ import annotations

import os
import statistics
import time
import warnings

import torch

import igkit
import igkit.attribution.pass_size as pass_size
from igkit.errors import IgkitWarning

from .networks import googlenet
from .small_cnn import SIZE, small_cnn

MEASURED, LIMIT = (16, 4, 1), (1,)   # probe divisors: igkit's, and the memory limit alone


def timed(model: torch.nn.Module, x: torch.Tensor, divisors: tuple[int, ...]) -> tuple[float, int]:
    """Seconds of one IG call with these probe divisors, and the pass size it ended with."""
    pass_size.PROBE_DIVISORS = divisors
    start = time.perf_counter()
    result = igkit.integrated_gradients(model, x, target=0, steps=50)
    return time.perf_counter() - start, result.summary(0)["pass_size"]


def main(rounds: int = 5) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    warnings.simplefilter("ignore", IgkitWarning)   # untrained models: only the seconds matter here
    print(f"nproc {os.cpu_count()}, load {open('/proc/loadavg').read().split()[:3]}, torch threads 1")
    cases = {"small CNN 24px, 64 examples": (small_cnn().eval(), torch.rand(64, 3, SIZE, SIZE)),
             "GoogLeNet 64px, 8 examples": (googlenet(), torch.rand(8, 3, 64, 64))}
    for name, (model, x) in cases.items():
        timed(model, x, MEASURED)
        times: dict[str, list[float]] = {"measured": [], "limit": []}
        chosen, limit = set(), 0
        for r in range(rounds):
            for which in (["measured", "limit"] if r % 2 == 0 else ["limit", "measured"]):
                seconds, size = timed(model, x, MEASURED if which == "measured" else LIMIT)
                times[which].append(seconds)
                if which == "measured":
                    chosen.add(size)
                else:
                    limit = size
        measured, whole = statistics.median(times["measured"]), statistics.median(times["limit"])
        print(f"{name}: memory limit {limit} points, chosen {sorted(chosen)}; median seconds measured "
              f"{measured:.3f}, limit {whole:.3f}; limit / measured {whole / measured:.2f}")
    pass_size.PROBE_DIVISORS = MEASURED
    print(f"load {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
