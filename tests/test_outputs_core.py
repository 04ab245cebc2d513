"""What every run's outputs say, whatever the domain: the model, the target, F(input) against
F(baseline) on its scale, the baseline, completeness and one meaning of converged; the run's last
line names unconverged items, ``--require-converged`` turns them into exit 1, and F(input) ≈
F(baseline) is warned about."""
from __future__ import annotations

import json
import types

import pytest
import torch

import igkit
from igkit.outputs import explains
from igkit.cli.main import main
from igkit.domain import Domain, Prepared


class StepDomain(Domain):
    """Items "a,b,c"; F = x · w, or a step of x · w (zero gradient: cannot converge) for "step:..."."""

    name = "stepdemo"
    description = "numbers scored by a linear model or a step"

    def load_model(self, source, **settings):
        return torch.tensor([2.0, -1.0, 0.5])

    def prepare(self, model, value, **settings):
        step = value.startswith("step:")
        x = torch.tensor([[float(v) for v in value.removeprefix("step:").split(",")]])
        forward = ((lambda v: (v @ model > 1).float() + 0 * (v @ model)) if step else (lambda v: v @ model))
        return Prepared(name=value, inputs=x, forward=forward, label="score",
                        scale="logit", target_meaning="how much the numbers weigh", baseline_name="all zeros",
                        group=("step" if step else "linear"))

    def other_scale(self, explanation):
        s = explanation.summary
        return {"name": "probability", "input": float(torch.sigmoid(torch.tensor(s["score_input"]))),
                "baseline": float(torch.sigmoid(torch.tensor(s["score_baseline"])))}


@pytest.fixture
def step_domain():
    module = types.ModuleType("stepdemo_plugin")
    module.igkit_domains = igkit.hookimpl(lambda: [StepDomain()])
    igkit.register(module, name="stepdemo-test")
    yield
    igkit.unregister("stepdemo-test")


def _summary(out, name):
    report = json.loads((out / "report.json").read_text())
    folder = next(e["folder"] for e in report["items"] if e["source"] == name)
    return json.loads((out / folder / "summary.json").read_text())


def test_summary_states_model_target_scores_baseline_and_completeness(tmp_path, step_domain):
    out = tmp_path / "run"
    assert main(["stepdemo", "explain", "1,2,3", "--out", str(out), "--quiet", "--threads", "1"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["model"] == "stepdemo default model (Tensor)"   # never null
    summary = _summary(out, "argument 1")
    assert summary["explains"]["model"] == {"name": run["model"], "digest": run["model_fingerprint"][:10]}
    assert summary["converged"] is True and summary["converged_by"] == "relative tolerance"
    lines = summary["explains"]["lines"]
    assert lines[0] == f"model: {run['model']} (weights {run['model_fingerprint'][:10]})"
    assert lines[1] == "target: score — how much the numbers weigh"
    # F(x) = 2 - 2 + 1.5 = 1.5, F(0) = 0, on the logit scale with the probability beside it
    assert lines[2] == "F(input) = 1.5 (logit), probability 0.8176; F(baseline) = 0 (logit), probability 0.5; " \
                       "baseline: all zeros"
    assert lines[3].startswith("Σ attributions = 1.5 vs F(input) − F(baseline) = 1.5: completeness error 0.00%")


def test_last_line_names_unconverged_items_and_require_converged_exits_1(tmp_path, step_domain, capsys):
    args = ["stepdemo", "explain", "1,2,3", "step:1,0,1", "--out", str(tmp_path / "a"), "--quiet",
            "--threads", "1", "--max-steps", "20"]
    assert main(args) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "NOT converged: step:1,0,1" in last and "--require-converged" in last
    assert _summary(tmp_path / "a", "argument 2")["converged"] is False
    assert _summary(tmp_path / "a", "argument 2")["converged_by"] is None
    assert main([*args[:5], str(tmp_path / "b"), *args[6:], "--require-converged"]) == 1
    assert main(["stepdemo", "explain", "1,2,3", "--out", str(tmp_path / "c"), "--quiet", "--threads", "1",
                 "--require-converged"]) == 0


def test_flat_path_is_warned_about_by_id(tmp_path, step_domain, capsys):
    assert main(["stepdemo", "explain", "0,0,0", "1,2,3", "--out", str(tmp_path), "--quiet", "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "igkit: warning: F(input) ≈ F(baseline) for 0,0,0: there is nothing to attribute" in err
    assert _summary(tmp_path, "argument 1")["explains"]["flat"] is True
    assert "nothing to attribute" in _summary(tmp_path, "argument 1")["explains"]["lines"][-1]
    assert _summary(tmp_path, "argument 2")["explains"]["flat"] is False


def test_converged_by_the_floor_is_recorded_not_hidden():
    """ΔF ≈ 0 with a large relative error: converged only by the absolute floor, and it says so."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    torch.manual_seed(0)
    x = torch.zeros(1, 4) + 1e-7
    result = igkit.integrated_gradients(lambda v: model(v)[:, 0] * 0 + 1e6 + (v ** 3).sum(1), x, floor=1e-2,
                                        tolerance=0.01)
    assert result.summary(0)["converged"] is True
    assert result.summary(0)["converged_by"] == "absolute floor"
    assert "absolute floor" in explains.convergence_words(True, "absolute floor")


def test_shares_mislead_only_when_delta_f_is_small_against_the_parts():
    assert explains.shares_mislead(1.0, 1.2) is None
    reason = explains.shares_mislead(0.05, 3.0)
    assert reason is not None and "absolute values are shown" in reason
    assert explains.flat_path(1.0, 1.0 + 1e-6) and not explains.flat_path(1.0, 0.9)


def test_require_converged_is_documented_with_the_exit_codes():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    codes = readme[readme.index("**Exit codes.**"):][:900]
    assert "--require-converged" in codes
