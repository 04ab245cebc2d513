"""Case 4's shared part: per-item rates from the sandwich timing, and what batching could win at most."""
from __future__ import annotations

from typing import Any

import numpy as np

from .report import Row


def batching_ceiling(ms_per_point: dict[int, float], steps: int) -> str:
    """What packing items into shared passes can win at most, from the per-point cost curve.

    Captum, one item at a time, already runs passes of ``steps`` path points; if
    bigger passes are no cheaper per point, batching cannot beat it by much.
    """
    own, best = ms_per_point[steps], min(ms_per_point.values())
    best_rows = min(ms_per_point, key=ms_per_point.get)
    return (f"one item's pass ({steps} points, as Captum runs it) costs {own:.2f} ms/point, the cheapest "
            f"pass measured ({best_rows} points) {best:.2f} ms/point: batching items can win at most "
            f"{own / best:.2f}x on this machine; more needs less work per point")


def throughput_row(item: str, n: int, igkit_seconds: list[float], captum_seconds: float, steps: int,
                   reference_name: str, goal: float, unit: str, ms_per_point: dict[int, float],
                   details: dict[str, Any]) -> Row:
    """Items per second of both contenders (igkit: median of its runs), and their ratio."""
    rates = {"igkit": n / float(np.median(igkit_seconds)), "captum": n / captum_seconds}
    details = {**details, "items": n, "steps": steps, "items_per_second": rates,
               "seconds": {"igkit": igkit_seconds, "captum": captum_seconds},
               "ms_per_path_point_by_rows_per_pass": ms_per_point}
    metric = f"{item}, IG {steps} steps, {n} items: {unit} (igkit ÷ Captum)"
    return Row("4 throughput", metric, rates["igkit"], rates["captum"], reference_name,
               rates["igkit"] / rates["captum"], goal, False, unit, details,
               why_missed=batching_ceiling(ms_per_point, steps))
