"""Saturation of weave models along the scaling path α·x (Figure 13a and 13b).

For each molecule: the task score at α·(atoms, pairs), and the sum of all
feature gradients there. A score that flattens near α = 1 while the gradients
shrink is the saturation that makes plain gradients misleading.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from igkit import gradients_at, score_curve  # noqa: E402

from .attribution import path_batch_size  # noqa: E402
from .batching import pack  # noqa: E402
from .checkpoint import MoleculeModel  # noqa: E402
from .featurize import MolGraph  # noqa: E402
from .weave import score_function  # noqa: E402


def saturation_curves(model: MoleculeModel, graphs: Sequence[MolGraph], *, task: str | int | None = None,
                      score: str = "probability", alphas: int = 21) -> dict[str, np.ndarray]:
    """``{"alpha": [A], "score": [B, A], "gradient_sum": [B, A]}`` for the molecules in ``graphs``."""
    t = model.task_index(task)
    model.check(graphs[0])
    model.net.eval()
    batch = pack(list(graphs))
    forward = score_function(model.net, score)
    rows = path_batch_size(batch, model)
    grid = torch.linspace(0, 1, alphas, dtype=torch.float64)
    curve = score_curve(forward, batch.inputs, target=t, alphas=grid.tolist(), forward_args=batch.structure,
                        batch_size=rows)
    grads = gradients_at(forward, batch.inputs, grid.tolist(), target=t, forward_args=batch.structure,
                         batch_size=rows)
    gradient_sum = sum(g.flatten(2).sum(2) for g in grads).T   # [B, A]
    return {"alpha": grid.numpy(), "score": curve["score"].numpy(), "gradient_sum": gradient_sum.numpy()}


def write_saturation(curves: dict[str, np.ndarray], ids: Sequence[str], out_dir: Path, title: str) -> list[Path]:
    """``saturation.png`` (two panels), ``saturation.csv`` (long format) and ``saturation.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    alpha = curves["alpha"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for k in range(len(ids)):
        left.plot(alpha, curves["score"][k], lw=1, alpha=0.8)
        right.plot(alpha, curves["gradient_sum"][k], lw=1, alpha=0.8)
    left.set(xlabel="α (scaling of atom and pair features)", ylabel="score", title=f"(a) {title}")
    right.set(xlabel="α", ylabel="sum of feature gradients", title="(b) gradients along the path")
    right.axhline(0, color="#888", lw=0.6)
    png = out_dir / "saturation.png"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
    table = out_dir / "saturation.csv"
    with table.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["molecule", "alpha", "score", "gradient_sum"])
        for k, name in enumerate(ids):
            writer.writerows([name, f"{a:.4g}", f"{s:.8g}", f"{g:.8g}"]
                             for a, s, g in zip(alpha, curves["score"][k], curves["gradient_sum"][k]))
    doc = out_dir / "saturation.json"
    doc.write_text(json.dumps({"title": title, "molecules": list(ids), "alpha": alpha.tolist(),
                               "score": curves["score"].tolist(),
                               "gradient_sum": curves["gradient_sum"].tolist()}, indent=1) + "\n")
    return [png, table, doc]
