"""Plugins: discovery through entry points, registration at run time, and the CLI end to end."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import igkit
from igkit.cli.main import main

THIRD_PARTY = Path(__file__).parent / "thirdparty"


def _run_igkit(*args: str, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "igkit.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_builtin_plugins_are_found_through_entry_points():
    done = _run_igkit("plugins")
    assert done.returncode == 0, done.stderr
    for name in ("vision", "molecules", "text"):
        assert any(line.split()[:1] == [name] and "entry point of igkit" in line
                   for line in done.stdout.splitlines()), done.stdout


def test_an_installed_third_party_plugin_is_discovered_and_runs_end_to_end(tmp_path):
    listed = _run_igkit("plugins", extra_path=THIRD_PARTY)
    assert listed.returncode == 0, listed.stderr
    assert any(line.split()[:2] == ["numbers", "0.3.1"] for line in listed.stdout.splitlines()), listed.stdout
    out = tmp_path / "out"
    done = _run_igkit("explain", "--domain", "numbers", "1,2,3", "oops", "--out", str(out),
                      "--steps", "4", extra_path=THIRD_PARTY)
    assert done.returncode == 1, done.stderr  # one item skipped: exit code 1, the other written
    assert "skipped argument 2" in done.stderr and "not a list of comma-separated numbers" in done.stderr
    report = json.loads((out / "report.json").read_text())
    written = [e for e in report["items"] if e["status"] == "written"]
    assert [e["source"] for e in written] == ["argument 1"]
    folder = out / written[0]["folder"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["attribution_sum"] == pytest.approx(2 * 1 - 2 + 0.5 * 3)
    assert summary["completeness_error"] == pytest.approx(0, abs=1e-6)
    for key in ("target", "score_input", "score_baseline", "attribution_sum", "completeness_error",
                "steps", "method", "seconds", "schema_version", "item", "run_id", "files"):
        assert key in summary
    assert (folder / "bars.txt").read_text().split() == ["2.000", "-2.000", "1.500"]
    assert [(e["source"], e["kind"]) for e in report["items"] if e["status"] == "skipped"] == [
        ("argument 2", "input")]
    assert _run_igkit("numbers", "sum", "1,2", extra_path=THIRD_PARTY).stdout.strip() == "3.0"


def _load_uninstalled_copy():
    """The toy plugin as a module that no entry point knows about."""
    spec = importlib.util.spec_from_file_location("toy_runtime_plugin", THIRD_PARTY / "toy_igkit_plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_registering_a_plugin_at_run_time_adds_its_domain_and_method(tmp_path):
    toy_igkit_plugin = _load_uninstalled_copy()
    assert "numbers" not in igkit.domains()
    igkit.register(toy_igkit_plugin, name="toy-runtime")
    try:
        assert "numbers" in igkit.domains()
        x = torch.tensor([[1.0, 1.0, 2.0]])
        attr = igkit.attribute("double_gxi", lambda v: v @ toy_igkit_plugin.WEIGHTS, x)
        torch.testing.assert_close(attr, 2 * x * toy_igkit_plugin.WEIGHTS)
        assert main(["explain", "--domain", "numbers", "0,0,4", "--out", str(tmp_path)]) == 0
        [folder] = [p for p in tmp_path.iterdir() if p.is_dir()]
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["score_input"] == pytest.approx(2.0)
        assert any(p.name == "toy-runtime" and p.version == "0.3.1" for p in igkit.list_plugins())
    finally:
        igkit.unregister("toy-runtime")
    assert "numbers" not in igkit.domains()


def test_unknown_domain_is_a_clear_cli_error(tmp_path, capsys):
    assert main(["explain", "--domain", "nope", "x", "--out", str(tmp_path)]) == 2
    assert "no domain named 'nope'" in capsys.readouterr().err


def test_every_route_reads_one_set_of_integration_defaults():
    import argparse

    from igkit.cli.commands import add_integration_arguments, integration_from_args
    from igkit.options import DEFAULT_TOLERANCE, Integration

    parser = argparse.ArgumentParser()
    add_integration_arguments(parser, Integration())
    assert integration_from_args(parser.parse_args([]), Integration()) == Integration()
    assert Integration().adaptive and Integration().tolerance == DEFAULT_TOLERANCE
    fixed = integration_from_args(parser.parse_args(["--steps", "20", "--method", "riemann_middle"]),
                                  Integration())
    assert fixed.keywords() == {"steps": 20, "method": "riemann_middle", "batch_size": None}
    strict = Integration(tolerance=0.001)
    narrow = argparse.ArgumentParser()
    add_integration_arguments(narrow, strict)
    assert integration_from_args(narrow.parse_args([]), strict).keywords()["tolerance"] == 0.001
    # the Python API's default is the same adaptive rule
    result = igkit.integrated_gradients(lambda v: torch.tanh(v).sum(1), torch.rand(2, 3))
    assert result.method == "adaptive_simpson" and result.meta["tolerance"] == DEFAULT_TOLERANCE
