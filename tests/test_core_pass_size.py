"""The pass size below the memory limit follows the measured cost per path point (a fake clock
stands in for the machine, so the known cost curve decides), and never changes the answer."""
from __future__ import annotations

import torch

import igkit
from igkit.attribution.pass_size import PassSizer
from igkit.attribution.path import PathEvaluator, default_batch_size


class FakeMachine:
    """A clock that a pass of n rows advances by ``cost(n)`` seconds."""

    def __init__(self, cost):
        self.now = 0.0
        self.cost = cost
        self.passes: list[int] = []

    def clock(self) -> float:
        return self.now

    def run(self, rows: int) -> None:
        self.now += self.cost(rows)
        self.passes.append(rows)


def _evaluator(machine: FakeMachine, limit: int, examples: int = 4) -> PathEvaluator:
    w = torch.tensor([0.5, -2.0, 3.0, 1.0])

    def forward(v: torch.Tensor) -> torch.Tensor:
        machine.run(v.shape[0])
        return v @ w

    x = torch.rand(examples, 4)
    ev = PathEvaluator(forward, (x,), (torch.zeros(1, examples, 4),), None)
    ev.batch_size = limit
    ev.sizer = PassSizer(limit, clock=machine.clock)
    return ev


def _all_rows(ev: PathEvaluator, steps: int) -> None:
    rows = ev.batch * steps
    ex = torch.arange(ev.batch).repeat(steps)
    alpha = torch.linspace(0, 1, steps, dtype=torch.float64).repeat_interleave(ev.batch)
    for _ in ev.rows(ex, torch.zeros(rows, dtype=torch.long), alpha):
        pass


def _middle(n: int) -> float:
    """1 ms per point + 20 ms per pass, and passes above 32 rows spill the cache (3 ms per point)."""
    return 0.020 + n * (0.001 if n <= 32 else 0.003)


def test_a_cost_curve_with_its_minimum_in_the_middle_picks_the_middle_size():
    machine = FakeMachine(_middle)
    ev = _evaluator(machine, limit=128)
    _all_rows(ev, steps=100)                      # 400 rows
    assert ev.sizer.candidates == [8, 32, 128]
    assert machine.passes[:3] == [8, 32, 128]     # each probe does real work
    assert ev.sizer.chosen == 32
    assert set(machine.passes[3:-1]) == {32}
    assert ev.costs()["pass_size"] == [32] * 4


def test_a_falling_cost_curve_picks_the_memory_limit_and_a_flat_one_the_smallest_size():
    falling = FakeMachine(lambda n: 0.050 + 0.001 * n)           # a pass costs 50 points' worth
    ev = _evaluator(falling, limit=128)
    _all_rows(ev, steps=100)
    assert ev.sizer.chosen == 128
    flat = FakeMachine(lambda n: 0.001 * n)                      # nothing to win: least memory
    ev = _evaluator(flat, limit=128)
    _all_rows(ev, steps=100)
    assert ev.sizer.chosen == 8


def test_a_small_memory_limit_is_used_without_probes():
    """Probes under 8 rows would pay a pass's fixed cost on too few points (GoogLeNet 224 px: 13)."""
    machine = FakeMachine(_middle)
    ev = _evaluator(machine, limit=13)
    _all_rows(ev, steps=20)
    assert ev.sizer.candidates == [13] and ev.sizer.chosen == 13
    assert machine.passes == [13] * 6 + [2]


def test_too_few_rows_to_probe_leave_the_memory_limit_and_the_summary_says_so():
    x = torch.rand(2, 5)
    result = igkit.integrated_gradients(lambda v: v.sum(1), x, steps=8)
    assert result.summary(0)["pass_size"] == default_batch_size((x,))
    assert igkit.integrated_gradients(lambda v: v.sum(1), x, steps=8, batch_size=3).summary(1)["pass_size"] == 3


def test_the_chosen_size_does_not_change_the_answer():
    machine = FakeMachine(_middle)
    probed = _evaluator(machine, limit=128)
    whole = PathEvaluator(probed.forward, probed.xs, probed.bs, probed.targets, batch_size=400)
    sums = []
    for ev in (probed, whole):
        ex = torch.arange(4).repeat(100)
        alpha = torch.linspace(0, 1, 100, dtype=torch.float64).repeat_interleave(4)
        sums.append(torch.cat([g[0] for _, _, g in ev.rows(ex, torch.zeros(400, dtype=torch.long), alpha)]))
    torch.testing.assert_close(sums[0], sums[1], rtol=0, atol=0)
