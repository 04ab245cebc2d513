"""Saturation of weave models along the scaling path α·x (Figure 13a and 13b).

For each molecule: the task score at α·(atoms, pairs), and the sum of all
feature gradients there. A score that flattens near α = 1 while the gradients
shrink is the saturation that makes plain gradients misleading.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from igkit import gradients_at, score_curve
from igkit.records import write_csv, write_json

from .attribution import path_batch_size, row_cost
from .batching import pack
from .checkpoint import MoleculeModel
from .featurize import MolGraph
from .weave import score_function


def saturation_curves(model: MoleculeModel, graphs: Sequence[MolGraph], *, task: str | int | None = None,
                      score: str = "probability", alphas: int = 21) -> dict[str, np.ndarray]:
    """``{"alpha": [A], "score": [B, A], "gradient_sum": [B, A]}`` for the molecules in ``graphs``."""
    t = model.task_index(task)
    model.check(graphs[0])
    model.net.eval()
    batch = pack(list(graphs))
    forward = score_function(model.net, score)
    rows = path_batch_size(batch.atoms.shape[1], batch.pairs.shape[1], row_cost(model))
    grid = torch.linspace(0, 1, alphas, dtype=torch.float64)
    curve = score_curve(forward, batch.inputs, target=t, alphas=grid.tolist(), forward_args=batch.structure,
                        batch_size=rows)
    grads = gradients_at(forward, batch.inputs, grid.tolist(), target=t, forward_args=batch.structure,
                         batch_size=rows)
    gradient_sum = sum(g.flatten(2).sum(2) for g in grads).T   # [B, A]
    return {"alpha": grid.numpy(), "score": curve["score"].numpy(), "gradient_sum": gradient_sum.numpy()}


def write_saturation(curves: dict[str, np.ndarray], ids: Sequence[str], out_dir: Path, title: str) -> list[Path]:
    """``saturation.png`` (two panels), ``saturation.csv`` (long format) and ``saturation.json``."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    alpha = curves["alpha"]
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    colours = matplotlib.colormaps["tab10"].colors
    dashes = ("-", "--", ":", "-.")
    for k in range(len(ids)):   # 10 colours × 4 dash styles: up to 40 molecules each have their own style
        style = {"color": colours[k % 10], "linestyle": dashes[(k // 10) % 4], "lw": 1.1, "alpha": 0.9}
        left.plot(alpha, curves["score"][k], label=str(ids[k])[:28], **style)
        right.plot(alpha, curves["gradient_sum"][k], **style)
    left.set(xlabel="α (scaling of atom and pair features)", ylabel="score")
    left.set_title(f"(a) {title}", fontsize=10)
    right.set(xlabel="α", ylabel="sum of feature gradients")
    right.set_title("(b) gradients along the path", fontsize=10)
    right.axhline(0, color="#888", lw=0.6, linestyle=(0, (1, 3)))
    fig.legend(loc="outside right upper", fontsize=6, ncols=1 + len(ids) // 20, title="molecule",
               title_fontsize=7)
    png = out_dir / "saturation.png"
    fig.savefig(png, dpi=110)
    table = write_csv(out_dir / "saturation.csv", ["molecule", "alpha", "score", "gradient_sum"],
                      [[name, f"{a:.4g}", float(s), float(g)] for k, name in enumerate(ids)
                       for a, s, g in zip(alpha, curves["score"][k], curves["gradient_sum"][k])])
    doc = write_json(out_dir / "saturation.json",
                     {"title": title, "molecules": list(ids), "alpha": alpha.tolist(),
                      "score": curves["score"].tolist(), "gradient_sum": curves["gradient_sum"].tolist()})
    return [png, table, doc]
