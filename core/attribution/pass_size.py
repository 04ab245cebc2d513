"""How many path points go into one pass, chosen from what passes cost on this machine.

The memory limit (:func:`igkit.attribution.path.default_batch_size`) bounds a pass; below it, the
cheapest size per point depends on the model and the machine: on 2 CPU cores GoogLeNet ran
faster in passes of 13 points than of 27, while the small bench models' points got cheaper up
to passes of 65 (bench/README.md). So the first passes of a long run are probes at a few sizes
up to the limit, each doing real work, timed; the rest of the run uses the size whose seconds
per point were lowest (the smaller of two within :data:`NEAR_TIE`: it holds less memory).
"""
from __future__ import annotations

import time
from typing import Callable

#: the probed sizes, as divisors of the memory limit (largest last)
PROBE_DIVISORS = (16, 4, 1)
#: no probe smaller than this: below it a pass's fixed cost dominates (GoogLeNet at 224 px, memory
#: limit 13: one point alone cost 1.8x a point in a pass of 17), so a small limit is used as it is
MIN_PROBE_ROWS = 8
#: a smaller pass within this fraction of the cheapest per-point cost wins (less memory, same speed)
NEAR_TIE = 0.05


class PassSizer:
    """Probe pass sizes on the real passes, then keep the cheapest per point."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.perf_counter):
        self.limit = limit
        self.clock = clock
        self.candidates = sorted({limit} | {limit // d for d in PROBE_DIVISORS if limit // d >= MIN_PROBE_ROWS})
        self.seconds_per_point: dict[int, float] = {}
        self.chosen: int | None = limit if len(self.candidates) == 1 else None

    def next_size(self, remaining: int) -> int:
        """Rows for the next pass, ``remaining`` rows being left to evaluate in this call."""
        if self.chosen is not None:
            return self.chosen
        for size in self.candidates:
            if size not in self.seconds_per_point and size <= remaining:
                return size
        return min(remaining, self.limit)   # too few rows left to probe another size: one pass

    def record(self, rows: int, seconds: float) -> None:
        """A pass of ``rows`` rows took ``seconds``; a probe size's first pass is its measurement."""
        if self.chosen is not None or rows not in self.candidates or rows in self.seconds_per_point:
            return
        self.seconds_per_point[rows] = seconds / rows
        if len(self.seconds_per_point) == len(self.candidates):
            self.chosen = self._cheapest()

    def size(self) -> int:
        """The pass size in effect: the chosen one, or the memory limit before (or without) a choice."""
        return self.chosen if self.chosen is not None else self.limit

    def _cheapest(self) -> int:
        best = min(self.seconds_per_point.values())
        return min(size for size, cost in self.seconds_per_point.items() if cost <= best * (1 + NEAR_TIE))
