"""The one explain path, tried with real batches and bad input: nothing lost, mixed or stale.

A small linear domain (known answers: attribution = x · w) is run through the same
runner and folder writer as every built-in domain, with failures injected where a user
or a machine would cause them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import igkit
from igkit.cli.main import main
from igkit.domain import BadItem, Domain, Item, Prepared, content_digest
from igkit.errors import Interrupted
from igkit.run.run_folder import run_to_folder
from igkit.run.runner import RunOptions

WEIGHTS = torch.tensor([2.0, -1.0, 0.5])


class LinearDomain(Domain):
    """Items are comma-separated numbers or files holding them; F(x) = x · w."""

    name = "linear"
    description = "numbers scored by a fixed linear model"

    def __init__(self, interrupt_writing: str | None = None):
        self.interrupt_writing = interrupt_writing

    def load_model(self, source, **settings):
        return WEIGHTS

    def read_items(self, sources, **settings):
        for number, text in enumerate(sources, start=1):
            path = Path(text)
            if path.suffix == ".txt":
                if not path.is_file():
                    yield BadItem(text, "no such file")
                    continue
                content = igkit.read_text(path).strip()
                yield Item(source=text, value=content, name=path.stem, digest=content_digest(content))
            else:
                yield Item(source=f"argument {number}", value=text, name=text, digest=content_digest(text))

    def prepare(self, model, value, scale: float = 1.0, **settings):
        try:
            values = [float(v) * scale for v in value.split(",")]
        except ValueError:
            raise igkit.IGInputError(f"{value!r} is not comma-separated numbers") from None
        return Prepared(name=value, inputs=torch.tensor([values]), forward=lambda v: v @ model, label="score",
                        group=0)

    def write_item(self, explanation, folder, *, pictures=True):
        if explanation.item.value == self.interrupt_writing:
            (folder / "half.txt").write_text("half")
            raise KeyboardInterrupt
        values = explanation.result.attributions[0].tolist()
        (folder / "attributions.txt").write_text(" ".join(f"{v:.4f}" for v in values))
        return ["attributions.txt"]

    def write_run(self, out_dir, folders, *, pictures=True):
        rows = [[f.name, (f / "attributions.txt").read_text()] for f in folders]
        igkit.write_csv(out_dir / "all.csv", ["folder", "attributions"], rows)
        return ["all.csv"]


def run(domain: Domain, items, out: Path, **kw):
    options = kw.pop("options", RunOptions(igkit.Integration(steps=4)))
    settings = kw.pop("settings", {})
    return run_to_folder(domain, WEIGHTS, domain.read_items(items), out, settings=settings, options=options,
                         show_progress=False, **kw)


def test_an_interrupt_while_writing_leaves_no_half_folder(tmp_path):
    with pytest.raises(Interrupted):
        run(LinearDomain(interrupt_writing="2,2,2"), ["1,1,1", "2,2,2"], tmp_path)
    folders = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert all((p / "summary.json").is_file() for p in folders) and len(folders) == 1
    assert not list(tmp_path.rglob("half.txt"))
    assert json.loads((tmp_path / "report.json").read_text())["status"] == "interrupted"


def test_in_memory_api_returns_explanations_in_input_order_and_the_skips():
    result = igkit.explain(LinearDomain(), ["0,0,2", "bad", "1,0,0"], integration={"steps": 2})
    assert [e.item.value for e in result] == ["0,0,2", "1,0,0"]
    assert [s.source for s in result.skipped] == ["argument 2"]
    with pytest.raises(igkit.IGInputError, match="no setting 'colour'"):
        igkit.explain(LinearDomain(), ["1,1,1"], colour="red")


def test_progress_moves_within_one_item():
    from igkit.run.progress import on_pass

    seen: list[int] = []
    model = torch.nn.Sequential(torch.nn.Linear(50, 50), torch.nn.Tanh(), torch.nn.Linear(50, 1)).eval()
    with on_pass(seen.append):
        igkit.integrated_gradients(lambda v: model(v)[:, 0], torch.rand(1, 50), steps=40, batch_size=8)
    assert len(seen) >= 5 and sum(seen) >= 40


def test_a_model_in_training_mode_is_named_in_a_warning():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.5), torch.nn.Linear(3, 1))
    with pytest.warns(igkit.IgkitWarning, match="training mode.*model.eval"):
        igkit.integrated_gradients(lambda v: model(v)[:, 0], torch.rand(2, 3), steps=4)
    model.eval()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", igkit.IgkitWarning)
        igkit.integrated_gradients(lambda v: model(v)[:, 0], torch.rand(2, 3), steps=64)


def test_a_forward_that_detaches_its_input_is_flagged_with_fixed_steps():
    layer = torch.nn.Linear(3, 1).eval()
    with pytest.warns(igkit.IgkitWarning, match="completeness error above 5%.*detaches"):
        result = igkit.integrated_gradients(lambda v: layer(v.detach() + 1)[:, 0], torch.rand(2, 3) + 1,
                                            steps=8)
    assert float(result.attribution_sum.abs().max()) == 0.0


def test_a_tiny_score_difference_neither_stalls_nor_reports_a_meaningless_error():
    forward = lambda v: 0.3 + 1e-9 * torch.sin(5 * v).sum(1)  # noqa: E731 - F(x) − F(0) ≈ 1e-9
    result = igkit.integrated_gradients(forward, torch.rand(3, 4))
    assert result.meta["converged"] == [True, True, True]
    assert max(len(a) for a in result.alphas) < 50  # no stall at max_steps


def test_each_example_reports_its_own_step_count():
    forward = lambda v, scale: torch.tanh(v * scale).sum(1)  # noqa: E731 - scale follows its example
    result = igkit.integrated_gradients(forward, torch.ones(2, 3), tolerance=1e-4,
                                        forward_args=(torch.tensor([[1.0], [40.0]]),))
    easy, hard = result.summary(0)["steps"], result.summary(1)["steps"]
    assert easy < hard and hard == result.steps
    assert result.meta["max_steps"] == 1024   # the rule is recorded, so a second IG can repeat it


def test_input_files_with_bom_and_crlf_read_like_plain_utf8_and_other_encodings_fail_clearly(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("mol_id,smiles\nm1,CCO\n")
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfmol_id,smiles\r\nm1,CCO\r\n")
    for path in (plain, bom):
        columns, rows = igkit.read_table(path, required=["mol_id"])
        assert columns == ["mol_id", "smiles"] and list(rows) == [(2, {"mol_id": "m1", "smiles": "CCO"})]
    latin = tmp_path / "latin.txt"
    latin.write_bytes("first line\ncaf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(igkit.InputFileError, match=r"latin.txt, line 2: not UTF-8"):
        igkit.read_text(latin)


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path):
    path = igkit.write_csv(tmp_path / "t.csv", ["id", "value"], [["=HYPERLINK(1)", -0.5], ["@SUM", 1.0],
                                                                  ["-1+2", "-1.25"]])
    assert path.read_text().splitlines() == ["id,value", "'=HYPERLINK(1),-0.5", "'@SUM,1", "'-1+2,-1.25"]


@pytest.mark.parametrize("damage", ["no_json", "bad_json", "truncated", "wrong_keys"])
def test_every_broken_checkpoint_is_a_clear_model_error(tmp_path, damage):
    from igkit.io.checkpoint import load_checkpoint, load_state, save_checkpoint

    net = torch.nn.Linear(3, 2)
    weights, config = save_checkpoint(tmp_path / "m", net.state_dict(), {"kind": "linear"})
    if damage == "no_json":
        config.unlink()
    elif damage == "bad_json":
        config.write_text("{not json")
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:40])
    with pytest.raises(igkit.ModelError, match=str(tmp_path)):
        tensors, _ = load_checkpoint(tmp_path / "m")
        load_state(torch.nn.Linear(3, 3) if damage == "wrong_keys" else net, tensors, tmp_path / "m")


@pytest.fixture
def linear_registered():
    import types

    module = types.ModuleType("linear_plugin")
    module.igkit_domains = igkit.hookimpl(lambda: [LinearDomain()])
    igkit.register(module, name="linear-test")
    yield
    igkit.unregister("linear-test")


def test_cli_exit_codes_and_one_error_line_for_user_errors(tmp_path, capsys, linear_registered):
    out = tmp_path / "out"
    assert main(["linear", "explain", "1,1,1", "--out", str(out), "--steps", "2"]) == 0
    assert main(["linear", "explain", "1,1,1", "nope", "--out", str(out), "--steps", "2"]) == 1
    capsys.readouterr()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for argv, message in (
            (["linear", "explain", "1,1,1", "--out", str(a_file)], "is a file"),
            (["linear", "explain", "1,1,1", "--out", str(a_file / "sub")], "cannot write to --out"),
            (["linear", "explain", "1,1,1", "--out", str(out), "--steps", "3"], "--overwrite"),
            (["explain", "--domain", "nope", "x", "--out", str(out)], "no domain named 'nope'")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("igkit: error:") and message in err and "Traceback" not in err
    with pytest.raises(SystemExit) as stop:
        main(["linear", "explain", "1,1,1", "--out", str(out), "--steps", "0"])
    assert stop.value.code == 2 and "expected a whole number ≥ 1" in capsys.readouterr().err


def test_ctrl_c_exits_130_with_a_resume_hint(tmp_path, capsys, monkeypatch, linear_registered):
    monkeypatch.setattr(LinearDomain, "prepare", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(["linear", "explain", "1,1,1", "--out", str(tmp_path)]) == 130
    assert "run the same command again to resume" in capsys.readouterr().err


def test_threads_option_sets_torch_threads(tmp_path, linear_registered):
    before = torch.get_num_threads()
    try:
        assert main(["linear", "explain", "1,1,1", "--out", str(tmp_path), "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_every_option_of_every_command_has_help_text(linear_registered):
    import argparse

    from igkit.cli.main import _leaf_parsers, build_parser

    missing = []
    for parser in _leaf_parsers(build_parser()):
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_help_and_plugins_load_no_domain_dependencies():
    import subprocess
    import sys

    code = ("import sys; from igkit.cli.main import main\n"
            "for argv in (['--help'], ['plugins']):\n"
            "    try: main(argv)\n"
            "    except SystemExit: pass\n"
            "heavy = [m for m in ('torch', 'torchvision', 'rdkit', 'matplotlib', 'gradio', 'ray')"
            " if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr
    # ...and the plugins did load (a plugin that failed to import would load nothing either)
    for domain in ("molecules", "text", "vision"):
        assert f"  {domain} " in done.stdout, done.stdout + done.stderr
    assert "failed to load" not in done.stderr


def test_no_items_is_a_usage_error_before_anything_is_written(tmp_path, capsys, linear_registered):
    out = tmp_path / "out"
    assert main(["linear", "explain", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("igkit: error: no linear items given")
    assert not out.exists()
