"""Timing two or more contenders fairly: alternate them, repeat, take medians."""
from __future__ import annotations

import random
import statistics
import time
from typing import Callable

import torch


def seconds(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_medians(contenders: dict[str, Callable[[], object]], repeats: int,
                        warmup: int = 1, seed: int = 0, min_seconds: float = 0.0,
                        max_repeats: int = 25) -> dict[str, float]:
    """Median seconds per contender; each round runs all of them, in a changing order.

    The first place rotates (no contender always runs first, on cold caches) and the others follow
    in a seeded shuffle (the same orders on every run), so none always runs right after the same
    other one: a contender that leaves a large heap behind (Captum's passes of a big model) would
    otherwise slow whichever one always follows it. A burst of background load lands on all of
    them alike within a round. After ``repeats`` rounds, rounds go on (up to ``max_repeats``)
    until every contender has been timed for ``min_seconds`` in all: a run of a few milliseconds
    is at the mercy of the scheduler, and a median of two such runs moved by 10% between runs.
    """
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    shuffle = random.Random(seed)
    r = 0
    while r < max(1, repeats) or (r < max_repeats and min(map(sum, times.values())) < min_seconds):
        first = names[(r + seed) % len(names)]
        rest = [name for name in names if name != first]
        shuffle.shuffle(rest)
        for name in (first, *rest):
            times[name].append(seconds(contenders[name]))
        r += 1
    return {name: statistics.median(values) for name, values in times.items()}


def sandwiched(ours: Callable[[], object], reference: Callable[[], object]) -> tuple[list[float], float]:
    """Seconds of ``ours`` before and after one run of ``reference`` (too slow to repeat).

    A drift in background load during the long reference run then shows up in
    both of ours, and their median is compared. ``ours`` runs once untimed
    first: the reference warms up on its first item, ours would pay it in full.
    """
    ours()
    before = seconds(ours)
    middle = seconds(reference)
    return [before, seconds(ours)], middle


def milliseconds_per_path_point(forward: Callable[..., torch.Tensor], inputs: tuple, forward_args: tuple,
                                target: int, rows_per_pass: tuple[int, ...] = (1, 10, 50, 250),
                                repeats: int = 3, backward: bool = True) -> dict[int, float]:
    """Cost of one forward+backward row (or forward only) when ``rows`` copies of one example share
    a pass.

    This is the curve that decides how much batching across examples can win:
    if it is flat from the rows one example already brings (its steps), packing
    more examples into a pass saves nothing.
    """
    curve = {}
    for rows in rows_per_pass:
        xs = [x.expand(rows, *x.shape[1:]).clone() for x in inputs]
        args = [a.expand(rows, *a.shape[1:]) if isinstance(a, torch.Tensor) else a for a in forward_args]

        def one_pass() -> None:
            if not backward:
                with torch.no_grad():
                    forward(*xs, *args)
                return
            leaves = [x.requires_grad_(True) for x in xs]
            torch.autograd.grad(forward(*leaves, *args)[:, target].sum(), leaves)
        curve[rows] = 1000 * statistics.median(seconds(one_pass) for _ in range(repeats)) / rows
    return curve
