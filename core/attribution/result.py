"""The result of an attribution run, and its round trip through NPZ + JSON on disk."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass
class IGResult:
    """Attributions plus everything needed to judge and redraw them.

    Per-example quantities have a leading batch dimension ``B``. ``alphas[e]`` and
    ``path_scores[e]`` are the nodes of example ``e``'s path and F there (averaged
    over baselines): the saturation curve comes free with every run. Adaptive
    integration gives each example its own nodes, hence lists.
    """

    attributions: torch.Tensor | tuple[torch.Tensor, ...]
    score_input: torch.Tensor
    score_baseline: torch.Tensor
    alphas: list[torch.Tensor]
    path_scores: list[torch.Tensor]
    steps: int
    method: str
    interior: tuple[list[torch.Tensor], ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def attribution_tuple(self) -> tuple[torch.Tensor, ...]:
        """Attributions always as a tuple, one tensor per input."""
        a = self.attributions
        return a if isinstance(a, tuple) else (a,)

    @property
    def attribution_sum(self) -> torch.Tensor:
        """Σ of all attributions per example (over every input and feature)."""
        return sum(a.reshape(a.shape[0], -1).sum(1) for a in self.attribution_tuple)

    @property
    def completeness_delta(self) -> torch.Tensor:
        """Absolute completeness gap Σ attributions − (F(x) − F(b)), per example."""
        return self.attribution_sum - (self.score_input - self.score_baseline)

    @property
    def completeness_error(self) -> torch.Tensor:
        """Relative gap |Σ attributions − (F(x) − F(b))| / |F(x) − F(b)|, per example."""
        return relative_completeness_error(self.attribution_sum, self.score_input,
                                           self.score_baseline)

    def example_steps(self, example: int) -> int:
        """Gradient evaluations spent on one example (its own path points × baselines)."""
        return int(len(self.alphas[example])) * int(self.meta.get("n_baselines", 1))

    def summary(self, example: int = 0) -> dict[str, Any]:
        """The fields every ``summary.json`` carries, for one example (its own step count)."""
        converged = self.meta.get("converged")
        return {
            "score_input": float(self.score_input[example]),
            "score_baseline": float(self.score_baseline[example]),
            "attribution_sum": float(self.attribution_sum[example]),
            "completeness_delta": float(self.completeness_delta[example]),
            "completeness_error": float(self.completeness_error[example]),
            "converged": None if converged is None else bool(converged[example]),
            "converged_by": (self.meta.get("converged_by") or [None] * (example + 1))[example],
            "feature_error": (self.meta.get("feature_error") or [None] * (example + 1))[example],
            "steps": self.example_steps(example),
            "path_points": int(len(self.alphas[example])),
            "baselines": int(self.meta.get("n_baselines", 1)),   # steps = path_points × baselines
            "method": self.method,
            **self.example_costs(example),
        }

    def example_costs(self, example: int) -> dict[str, int]:
        """What this example's answer cost: gradient and forward-only evaluations, and the passes
        it took part in (a pass shared with other examples counts for each; empty if not recorded)."""
        costs = self.meta.get("costs") or {}
        return {key: int(values[example]) for key, values in costs.items()}

    def example(self, e: int) -> "IGResult":
        """Example ``e`` alone, as a result of batch size 1 (what an item's folder stores)."""
        meta = dict(self.meta)
        if meta.get("converged") is not None:
            meta["converged"] = [meta["converged"][e]]
        for key in ("converged_by", "feature_error"):
            if meta.get(key) is not None:
                meta[key] = [meta[key][e]]
        if meta.get("costs") is not None:
            meta["costs"] = {key: [values[e]] for key, values in meta["costs"].items()}
        attrs = tuple(a[e:e + 1] for a in self.attribution_tuple)
        interior = None if self.interior is None else tuple([per[e]] for per in self.interior)
        return IGResult(
            attributions=attrs if isinstance(self.attributions, tuple) else attrs[0],
            score_input=self.score_input[e:e + 1], score_baseline=self.score_baseline[e:e + 1],
            alphas=[self.alphas[e]], path_scores=[self.path_scores[e]],
            steps=self.example_steps(e), method=self.method, interior=interior, meta=meta)

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (``.npz``) with arrays and a JSON header; reload with :meth:`load`."""
        path = Path(path).with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "score_input": _np(self.score_input),
            "score_baseline": _np(self.score_baseline),
        }
        for i, a in enumerate(self.attribution_tuple):
            arrays[f"attributions_{i}"] = _np(a)
        for e, (al, ps) in enumerate(zip(self.alphas, self.path_scores)):
            arrays[f"alphas_{e}"] = _np(al)
            arrays[f"path_scores_{e}"] = _np(ps)
        if self.interior is not None:
            for i, per_example in enumerate(self.interior):
                for e, g in enumerate(per_example):
                    arrays[f"interior_{i}_{e}"] = _np(g)
        header = {
            "steps": self.steps,
            "method": self.method,
            "n_inputs": len(self.attribution_tuple),
            "is_tuple": isinstance(self.attributions, tuple),
            "n_examples": len(self.alphas),
            "has_interior": self.interior is not None,
            "meta": self.meta,
        }
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        np.savez_compressed(path, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "IGResult":
        """Read a result written by :meth:`save` (plain arrays only; nothing is unpickled)."""
        with np.load(Path(path).with_suffix(".npz"), allow_pickle=False) as data:
            header = json.loads(bytes(data["header"]).decode())
            n_in, n_ex = header["n_inputs"], header["n_examples"]
            attrs = tuple(torch.from_numpy(data[f"attributions_{i}"]) for i in range(n_in))
            interior = None
            if header["has_interior"]:
                interior = tuple([torch.from_numpy(data[f"interior_{i}_{e}"]) for e in range(n_ex)]
                                 for i in range(n_in))
            return cls(
                attributions=attrs if header["is_tuple"] else attrs[0],
                score_input=torch.from_numpy(data["score_input"]),
                score_baseline=torch.from_numpy(data["score_baseline"]),
                alphas=[torch.from_numpy(data[f"alphas_{e}"]) for e in range(n_ex)],
                path_scores=[torch.from_numpy(data[f"path_scores_{e}"]) for e in range(n_ex)],
                steps=header["steps"],
                method=header["method"],
                interior=interior,
                meta=header["meta"],
            )


def relative_completeness_error(attribution_sum: torch.Tensor, score_input: torch.Tensor,
                                score_baseline: torch.Tensor) -> torch.Tensor:
    """|Σ attributions − ΔF| / |ΔF|; where ΔF is 0 the absolute gap is returned instead."""
    gap = score_input - score_baseline
    delta = (attribution_sum - gap).abs()
    scale = gap.abs()
    return torch.where(scale > 0, delta / scale.clamp_min(torch.finfo(scale.dtype).tiny), delta)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()
