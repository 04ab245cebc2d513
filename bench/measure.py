"""Timing two or more contenders fairly: alternate them, repeat, take medians."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def seconds(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_medians(contenders: dict[str, Callable[[], object]], repeats: int,
                        warmup: int = 1) -> dict[str, float]:
    """Median seconds per contender; each round runs all of them, in a rotating order.

    Rotating the order means no contender always runs first (cold caches) or
    last (after the others warmed the allocator); alternating within one round
    means a burst of background load lands on all of them alike.
    """
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(max(1, repeats)):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(seconds(contenders[name]))
    return {name: statistics.median(values) for name, values in times.items()}
