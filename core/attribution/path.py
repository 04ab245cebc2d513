"""Evaluating a model at points of the straight-line path b + α(x − b), in bounded batches.

A *row* is one point: (example e, baseline k, α). Integration strategies decide
which rows to evaluate; this module evaluates them, chunked to ``batch_size``
rows per forward/backward pass (given, or chosen from measured costs below the
memory limit: :mod:`igkit.attribution.pass_size`), and checks every score and
gradient is finite.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

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
    """What an integration strategy hands back: the attributions, mean over baselines of
    (x − b)·∫ ∇F dα, and F."""

    attributions: tuple[torch.Tensor, ...]       # each [B, *features]
    score_input: torch.Tensor                    # [B]
    score_baseline: torch.Tensor                 # [B], mean over baselines
    alphas: list[torch.Tensor]
    path_scores: list[torch.Tensor]
    steps: int
    interior: list = field(default_factory=list)  # per input: [B, S, *features] or a list per example
    feature_errors: list[float] = field(default_factory=list)   # adaptive: estimated, per example
    features_within: list[bool] = field(default_factory=list)   # ... and within the feature tolerance


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
        # examples counts once for each of them. Plain ints: a small model's pass costs about as
        # much as a dozen tiny tensor operations, so the bookkeeping stays out of torch
        self.example_gradients = [0] * self.batch
        self.example_forwards = [0] * self.batch
        self.example_passes = [0] * self.batch
        # the one class every example is attributed to, if so: its scores are a column of the output
        self.common_target = _common_target(targets)
        self._differences: tuple[torch.Tensor, ...] | None = None

    def costs(self) -> dict[str, list[int]]:
        """Per example: gradient (forward + backward) and forward-only evaluations, passes, and the
        pass size in effect at the end (given, chosen from measured costs, or the memory limit)."""
        size = self.batch_size if self.sizer is None else self.sizer.size()
        return {"gradient_evaluations": list(self.example_gradients),
                "forward_evaluations": list(self.example_forwards),
                "passes": list(self.example_passes),
                "pass_size": [size] * self.batch}

    def differences(self, i: int, ex: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """x − b of input ``i`` at these rows, ``[rows, features]`` (``[1, features]`` for one example
        and one baseline, kept), in the input's dtype but at least float32 (a half-precision product
        would blur the estimates): what a point's gradient is multiplied with. Built per pass
        otherwise, so memory stays that of one pass whatever K and B."""
        if self.batch > 1 or self.n_baselines > 1:
            return _at_least_single(self.xs[i][ex] - self.bs[i][k, ex]).reshape(ex.numel(), -1)
        if self._differences is None:
            self._differences = tuple(_at_least_single(x - b[0]).reshape(1, -1) for x, b in zip(self.xs, self.bs))
        return self._differences[i]

    def rows(self, ex: torch.Tensor, k: torch.Tensor, alpha: torch.Tensor, *, grad: bool = True,
             checked: bool = True) -> Iterator[tuple[slice, torch.Tensor, tuple[torch.Tensor, ...] | None]]:
        """Yield ``(rows slice, scores, gradients or None)`` chunk by chunk.

        Without ``checked`` the caller checks that the scores and gradients are finite itself, on
        what it reduces them to (NaN and ±inf survive a sum: :func:`raise_non_finite` names the α)."""
        total, start = ex.numel(), 0
        while start < total:
            # gradient passes probe sizes and set the choice (they are the cost); forward-only ones follow
            size = self.batch_size if self.sizer is None else \
                self.sizer.next_size(total - start) if grad else self.sizer.size()
            sl = slice(start, min(start + size, total))
            start = sl.stop
            began = self.sizer.clock() if self.sizer is not None and grad else 0.0
            scores, grads = self._evaluate(ex[sl], k[sl], alpha[sl], grad, checked)
            if self.sizer is not None and grad:
                self.sizer.record(sl.stop - sl.start, self.sizer.clock() - began)
            report_pass(sl.stop - sl.start)
            self._count(ex[sl], grad)
            yield sl, scores, grads

    def _count(self, ex: torch.Tensor, grad: bool) -> None:
        """Add one pass's rows to the per-example costs."""
        counts = [ex.numel()] if self.batch == 1 else torch.bincount(ex.cpu(), minlength=self.batch).tolist()
        evaluations = self.example_gradients if grad else self.example_forwards
        for e, n in enumerate(counts):
            if n:
                evaluations[e] += n
                self.example_passes[e] += 1

    def scores_at(self, ex: torch.Tensor, k: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Scores only (no gradient), for the path's end points."""
        return torch.cat([s for _, s, _ in self.rows(ex, k, alpha, grad=False)])

    def end_scores(self) -> tuple[torch.Tensor, torch.Tensor]:
        """F at the inputs (α = 1) and the mean of F at every baseline (α = 0), each ``[B]``, in one
        forward-only pass: a pass costs a dispatch."""
        B, K, dev = self.batch, self.n_baselines, self.device
        ex = torch.arange(B, device=dev)
        rows = torch.cat([ex, ex.repeat_interleave(K)])
        baseline = torch.cat([torch.zeros_like(ex), torch.arange(K, device=dev).repeat(B)])
        alpha = torch.cat([torch.ones(B, device=dev), torch.zeros(B * K, device=dev)])
        scores = self.scores_at(rows, baseline, alpha)
        return scores[:B], scores[B:].reshape(B, K).mean(1)

    def points(self, ex: torch.Tensor, k: torch.Tensor, alpha: torch.Tensor
               ) -> tuple[tuple[torch.Tensor, ...], tuple]:
        """The scaled inputs at these rows, and the forward arguments that follow them."""
        scaled = tuple(self._scaled(i, ex, k, alpha) for i in range(len(self.xs)))
        args = tuple(a[ex] if isinstance(a, torch.Tensor) and a.dim() > 0 and a.shape[0] == self.batch
                     else a for a in self.forward_args)
        return scaled, args

    def _evaluate(self, ex, k, alpha, grad: bool, checked: bool = True):
        scaled, args = self.points(ex, k, alpha)
        with torch.set_grad_enabled(grad):
            if grad:
                scaled = tuple(s.requires_grad_(True) for s in scaled)
            output = self._forward(scaled, args)
            scores = self._select(output, ex)
            if checked:
                self._check_finite(scores.detach(), ex, alpha, "score")
            grads = None
            if grad:
                if not scores.requires_grad:
                    raise IGInputError("the forward output does not depend on the inputs through "
                                       "autograd; does forward detach them or run under no_grad?")
                grads = torch.autograd.grad(scores.sum(), scaled, allow_unused=True)
                grads = tuple(torch.zeros_like(s) if g is None else g for s, g in zip(scaled, grads))
                if checked:
                    for g in grads:
                        self._check_finite(g.reshape(g.shape[0], -1), ex, alpha, "gradient")
                self.evaluations += ex.numel()
        return scores.detach(), grads

    def _select(self, output: Any, ex: torch.Tensor) -> torch.Tensor:
        """One score per row: the common target's column when the output is plainly [rows, classes]
        (a view, no indexing), else :func:`select_scores` (which also explains a wrong output)."""
        t = self.common_target
        if t is not None and isinstance(output, torch.Tensor) and output.dim() == 2 and \
                output.shape[0] == ex.numel() and 0 <= t < output.shape[1]:
            return output[:, t]
        return select_scores(output, self.targets, ex)

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
        x, base = self.xs[i], self.bs[i]
        a = alpha.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        if self.batch > 1 or self.n_baselines > 1:   # one example, one baseline: lerp broadcasts them
            x, base = x[ex], base[k, ex]
        else:
            base = base[0]
        # one fused pass; lerp returns the ends exactly, so α = 1 is the input itself, bit for bit
        return torch.lerp(base, x, a)

    @staticmethod
    def _check_finite(values: torch.Tensor, ex, alpha, what: str) -> None:
        """Raise :class:`NonFiniteError` naming the first row (α, example) with a NaN or ±inf."""
        if values.numel() == 0:
            return
        lowest, highest = torch.aminmax(values)  # one pass without a mask: NaN and ±inf show here
        if bool(torch.isfinite(lowest) & torch.isfinite(highest)):
            return
        finite = torch.isfinite(values)
        if finite.dim() > 1:
            finite = finite.all(dim=1)
        row = int((~finite).nonzero()[0])
        raise_non_finite(what, float(alpha[row]), int(ex[row]))


def _at_least_single(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.promote_types(t.dtype, torch.float32))


def raise_non_finite(what: str, alpha: float, example: int) -> None:
    """The error for a NaN or ±inf score or gradient on the path: where, and what to try."""
    raise NonFiniteError(
        f"the model produced a non-finite {what} at alpha={alpha:.4g} on the path of example {example}; "
        f"the model misbehaves on scaled inputs there (a log or division near zero?): try another "
        f"baseline or fix the model")


def _common_target(targets: Any) -> int | None:
    """The class all examples share (a tensor of one repeated index), else None."""
    if not isinstance(targets, torch.Tensor) or targets.numel() == 0:
        return None
    first = int(targets[0])
    return first if bool((targets == first).all()) else None
