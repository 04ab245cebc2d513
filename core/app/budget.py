"""A per-request time budget with progress: one web request must not hold a model for minutes.

The budget is checked between the stages of a request (read, integrate, write), after every
forward/backward pass of the path engine (through :func:`igkit.run.progress.on_pass`), and, while
integrating, before every module call of a forward: one pass of a big model on a busy machine can
itself outlast the budget, and the request must not wait for it to end. When the budget is spent
the request stops with :class:`BudgetExceeded`, which is a ``BaseException`` so that the runner's
per-item error handling cannot turn it into a "skipped item". The pass hook also reports progress
to the page.
"""
from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from typing import Callable, Iterator

from igkit.run.progress import on_pass

#: the app's default budget per request, in seconds (``igkit app --time-budget``)
DEFAULT_BUDGET_S = 120.0

#: called with (fraction of the budget spent or None, a short text)
ProgressCallback = Callable[[float | None, str], None]


class BudgetExceeded(BaseException):
    """The request used up its time budget; ``str()`` is the sentence the page shows."""


#: the budget of the request integrating in this thread (requests run side by side in threads)
_INTEGRATING: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("igkit_budget", default=None)
_HOOK_LOCK = threading.Lock()
_hook_installed = False


class Budget:
    """A deadline for one request, and the progress it reports on the way."""

    def __init__(self, seconds: float, report: ProgressCallback | None = None) -> None:
        self.seconds = float(seconds)
        self.start = time.perf_counter()
        self.report = report or (lambda fraction, text: None)
        self.stage = "starting"
        self.points = 0

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def check(self, stage: str | None = None) -> None:
        """Stop the request if the budget is spent; otherwise report where it is."""
        if stage is not None:
            self.stage = stage
        elapsed = self.elapsed
        if elapsed > self.seconds:
            raise BudgetExceeded(
                f"This request was stopped after {elapsed:.1f} s while {self.stage}: it went over the app's "
                f"time budget of {self.seconds:g} s per request. Ask for less work (fewer other methods, a "
                f"fixed small number of steps, a looser tolerance, a smaller picture), or start the app "
                f"with a larger budget: igkit app --time-budget SECONDS.")
        text = f"{self.stage}: {elapsed:.1f} s of {self.seconds:g} s"
        if self.points:
            text += f", {self.points} path points"
        self.report(min(elapsed / self.seconds, 1.0), text)

    def _passed(self, points: int) -> None:
        self.points += points
        self.check()

    @contextlib.contextmanager
    def watching_passes(self) -> Iterator[None]:
        """Check the budget after every forward/backward pass inside the block, and before every
        module call of a forward (a recomputed one in a backward included)."""
        _install_module_hook()
        token = _INTEGRATING.set(self)
        try:
            with on_pass(self._passed):
                yield
        finally:
            _INTEGRATING.reset(token)


def _stop_when_spent(module, args) -> None:
    """A forward pre-hook on every module: stop this thread's request once its budget is spent.
    Only the clock is read here (no progress report): it runs for every layer."""
    budget = _INTEGRATING.get()
    if budget is not None and budget.elapsed > budget.seconds:
        budget.check()


def _install_module_hook() -> None:
    """Once per process, when the app first integrates: torch's global forward pre-hook."""
    global _hook_installed
    with _HOOK_LOCK:
        if not _hook_installed:
            import torch

            torch.nn.modules.module.register_module_forward_pre_hook(_stop_when_spent)
            _hook_installed = True
