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
    """``saturation.png`` (score and gradient sum along α, a line per molecule), ``saturation.csv``
    (long format) and ``saturation.json``: igkit's saturation sheet."""
    from igkit.outputs.saturation_sheet import Curve, Panel, write_saturation as write_sheet

    lines = [Curve(str(name), {"score": curves["score"][k], "gradient_sum": curves["gradient_sum"][k]},
                   {"molecule": name}) for k, name in enumerate(ids)]
    panels = [Panel("score", "score", f"(a) {title}"),
              Panel("gradient_sum", "sum of feature gradients", "(b) gradients along the path")]
    document = {"title": title, "molecules": list(ids), "alpha": curves["alpha"].tolist(),
                "score": curves["score"].tolist(), "gradient_sum": curves["gradient_sum"].tolist()}
    return write_sheet(out_dir, curves["alpha"], lines, panels, xlabel="α (scaling of atom and pair features)",
                       legend_title="molecule", document=document, dpi=110)
