"""Evaluating a model at points of the straight-line path b + α(x − b), in bounded batches.

A *row* is one point: (example e, baseline k, α). Integration strategies decide
which rows to evaluate; this module evaluates them, chunked to ``batch_size``
rows per forward/backward pass (given, or chosen from measured costs below the
memory limit: :mod:`igkit.attribution.pass_size`), and checks every score and
gradient is finite.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from igkit.attribution.pass_size import PassSizer
from igkit.attribution.targets import select_scores
from igkit.errors import IGInputError, NonFiniteError
from igkit.run.progress import report_pass

#: default number of input elements per chunk (8 MiB of float32 input per pass). Memory stays
#: flat whatever the step count, and on 2 CPU cores smaller passes also ran faster: GoogLeNet
#: 224 px, 50 steps took 3.06 s in passes of 13 points (2**21) and 4.05 s in passes of 27 (2**22)
DEFAULT_CHUNK_ELEMENTS = 2 ** 21
MAX_DEFAULT_ROWS = 4096
#: phrases of torch's errors for tensors of another dtype or device than the model's parameters
_MISMATCH_WORDS = ("dtype", "scalar type", "same device", "device type", "Expected all tensors")


def default_batch_size(xs: tuple[torch.Tensor, ...]) -> int:
    """Rows per pass so that a chunk holds about 2M input elements (memory stays flat)."""
    per_row = max(1, sum(x[0].numel() for x in xs))
    return int(max(1, min(MAX_DEFAULT_ROWS, DEFAULT_CHUNK_ELEMENTS // per_row)))


@dataclass
class PathIntegral:
    """What an integration strategy hands back: ∫ gradients per (baseline, example), and F."""

    integrals: tuple[torch.Tensor, ...]          # each [K, B, *features]
    score_input: torch.Tensor                    # [B]
    score_baseline: torch.Tensor                 # [B], mean over baselines
    alphas: list[torch.Tensor]
    path_scores: list[torch.Tensor]
    steps: int
    interior: list = field(default_factory=list)  # per input: [B, S, *features] or a list per example


class PathEvaluator:
    """Scores and gradients of ``forward`` at path points, for a fixed set of inputs/baselines."""

    def __init__(self, forward: Callable[..., torch.Tensor], xs: tuple[torch.Tensor, ...],
                 bs: tuple[torch.Tensor, ...], targets, forward_args: tuple = (),
                 batch_size: int | None = None):
        if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
            raise IGInputError(f"batch_size must be ≥ 1 (path points per pass), got {batch_size!r}")
        self.forward = forward
        self.xs = xs
        self.bs = bs
        self.targets = targets
        self.forward_args = tuple(forward_args)
        self.batch = xs[0].shape[0]
        self.n_baselines = bs[0].shape[0]
        # the most rows a pass may hold; without a given batch_size the sizer picks the pass size
        # below the memory limit from the measured cost of the first passes
        self.batch_size = int(batch_size) if batch_size is not None else default_batch_size(xs)
        self.sizer = PassSizer(self.batch_size) if batch_size is None else None
        self.device = xs[0].device
        self.evaluations = 0
        # per example: what its answer cost (recorded in every summary). A pass shared by several
        # examples counts once for each of them
        self.example_gradients = torch.zeros(self.batch, dtype=torch.long)
        self.example_forwards = torch.zeros(self.batch, dtype=torch.long)
        self.example_passes = torch.zeros(self.batch, dtype=torch.long)

    def costs(self) -> dict[str, list[int]]:
        """Per example: gradient (forward + backward) and forward-only evaluations, passes, and the
        pass size in effect at the end (given, chosen from measured costs, or the memory limit)."""
        size = self.batch_size if self.sizer is None else self.sizer.size()
        return {"gradient_evaluations": self.example_gradients.tolist(),
                "forward_evaluations": self.example_forwards.tolist(),
                "passes": self.example_passes.tolist(),
                "pass_size": [size] * self.batch}

    def rows(self, ex: torch.Tensor, k: torch.Tensor, alpha: torch.Tensor, *, grad: bool = True
             ) -> Iterator[tuple[slice, torch.Tensor, tuple[torch.Tensor, ...] | None]]:
        """Yield ``(rows slice, scores, gradients or None)`` chunk by chunk."""
        total, start = ex.numel(), 0
        while start < total:
            # gradient passes probe sizes and set the choice (they are the cost); forward-only ones follow
            size = self.batch_size if self.sizer is None else \
                self.sizer.next_size(total - start) if grad else self.sizer.size()
            sl = slice(start, min(start + size, total))
            start = sl.stop
            began = self.sizer.clock() if self.sizer is not None and grad else 0.0
            scores, grads = self._evaluate(ex[sl], k[sl], alpha[sl], grad)
            if self.sizer is not None and grad:
                self.sizer.record(sl.stop - sl.start, self.sizer.clock() - began)
            report_pass(sl.stop - sl.start)
            rows_per_example = torch.bincount(ex[sl].cpu(), minlength=self.batch)
            (self.example_gradients if grad else self.example_forwards).add_(rows_per_example)
            self.example_passes.add_(rows_per_example > 0)
            yield sl, scores, grads

    def scores_at(self, ex: torch.Tensor, k: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Scores only (no gradient), for the path's end points."""
        return torch.cat([s for _, s, _ in self.rows(ex, k, alpha, grad=False)])

    def points(self, ex: torch.Tensor, k: torch.Tensor, alpha: torch.Tensor
               ) -> tuple[tuple[torch.Tensor, ...], tuple]:
        """The scaled inputs at these rows, and the forward arguments that follow them."""
        scaled = tuple(self._scaled(i, ex, k, alpha) for i in range(len(self.xs)))
        args = tuple(a[ex] if isinstance(a, torch.Tensor) and a.dim() > 0 and a.shape[0] == self.batch
                     else a for a in self.forward_args)
        return scaled, args

    def _evaluate(self, ex, k, alpha, grad: bool):
        scaled, args = self.points(ex, k, alpha)
        with torch.set_grad_enabled(grad):
            if grad:
                scaled = tuple(s.requires_grad_(True) for s in scaled)
            output = self._forward(scaled, args)
            scores = select_scores(output, self.targets, ex)
            self._check_finite(scores.detach(), ex, alpha, "score")
            grads = None
            if grad:
                if not scores.requires_grad:
                    raise IGInputError("the forward output does not depend on the inputs through "
                                       "autograd; does forward detach them or run under no_grad?")
                grads = torch.autograd.grad(scores.sum(), scaled, allow_unused=True)
                grads = tuple(torch.zeros_like(s) if g is None else g for s, g in zip(scaled, grads))
                for g in grads:
                    self._check_finite(g.reshape(g.shape[0], -1), ex, alpha, "gradient")
                self.evaluations += ex.numel()
        return scores.detach(), grads

    def _forward(self, scaled: tuple[torch.Tensor, ...], args: tuple) -> torch.Tensor:
        """The user's forward; a dtype or device clash inside it (a model igkit could not inspect)
        becomes an error that names the inputs' dtype and device and what to do."""
        try:
            return self.forward(*scaled, *args)
        except RuntimeError as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not any(word in message for word in _MISMATCH_WORDS):
                raise
            x = self.xs[0]
            raise IGInputError(f"the model failed on inputs of dtype {x.dtype} on device {x.device} "
                               f"({message}); give inputs with the dtype and device of the model's "
                               f"parameters (x.to(dtype=..., device=...))") from exc

    def _scaled(self, i: int, ex, k, alpha) -> torch.Tensor:
        x = self.xs[i][ex]
        base = self.bs[i][k, ex]
        a = alpha.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        # one fused pass; lerp returns the ends exactly, so α = 1 is the input itself, bit for bit
        return torch.lerp(base, x, a)

    @staticmethod
    def _check_finite(values: torch.Tensor, ex, alpha, what: str) -> None:
        if values.numel() == 0:
            return
        lowest, highest = torch.aminmax(values)  # one pass without a mask: NaN and ±inf show here
        if bool(torch.isfinite(lowest) & torch.isfinite(highest)):
            return
        finite = torch.isfinite(values)
        if finite.dim() > 1:
            finite = finite.all(dim=1)
        row = int((~finite).nonzero()[0])
        raise NonFiniteError(
            f"the model produced a non-finite {what} at alpha={float(alpha[row]):.4g} on the path of "
            f"example {int(ex[row])}; the model misbehaves on scaled inputs there (a log or division "
            f"near zero?): try another baseline or fix the model")
