"""Molecule outputs say what they explain: the shipped model by name, the task and its meaning,
F(input) and F(baseline) with the probability beside the logit, the baseline, completeness; one
colour legend; shares only where they cannot mislead; tables in input order; --shared-scale."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("rdkit", reason="molecules need RDKit (pip install -e '.[test]')")

from igkit.cli.main import main  # noqa: E402

CAFFEINE = "CN1C=NC2=C1C(=O)N(C(=O)N2C)C"
INPUTS = [CAFFEINE, "CCO", "c1ccccc1CCO"]          # two size buckets: groups finish out of order


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("molecules") / "run"
    assert main(["molecules", "explain", *INPUTS, "--out", str(out), "--quiet", "--threads", "1"]) == 0
    return out


def _folders(out: Path) -> list[Path]:
    report = json.loads((out / "report.json").read_text())
    return [out / e["folder"] for e in report["items"]]


def test_run_json_and_summaries_name_the_shipped_model_and_target(run):
    assert json.loads((run / "run.json").read_text())["model"].startswith("shipped benzene_w2n2")
    summary = json.loads((_folders(run)[2] / "summary.json").read_text())
    lines = summary["explains"]["lines"]
    assert lines[0].startswith("model: shipped benzene_w2n2") and "(weights " in lines[0]
    assert lines[1] == ("target: label (logit) — logit that task 'label' is 1 "
                        "(label 1 = the molecule contains a benzene ring)")
    assert "(logit), probability " in lines[2] and "F(baseline) = " in lines[2]
    assert "baseline: zero features and the carbon skeleton, attributions averaged" in lines[2]
    assert lines[3].startswith("Σ attributions = ") and "completeness error" in lines[3]
    # steps counts gradient evaluations: every path point once per averaged baseline
    assert summary["baselines"] == 2 and summary["steps"] == 2 * summary["path_points"]


def test_pictures_carry_the_caption_and_the_one_legend(run):
    folder = _folders(run)[2]
    svg = (folder / "atoms.svg").read_text()
    summary = json.loads((folder / "summary.json").read_text())
    for line in summary["explains"]["lines"]:
        assert line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in svg
    assert "red: raises label (logit) relative to the baseline · blue: lowers it" in svg
    assert "this item&#x27;s own largest |value|" in svg or "this item's own largest |value|" in svg


def test_shares_are_withheld_with_a_reason_when_they_would_explode(run):
    caffeine = json.loads((_folders(run)[0] / "accounting.json").read_text())
    assert caffeine["atoms_share"] is None and "absolute values are shown" in caffeine["shares_note"]
    assert isinstance(caffeine["atoms"], float)
    benzene = json.loads((_folders(run)[2] / "accounting.json").read_text())
    assert isinstance(benzene["atoms_share"], float) and "shares_note" not in benzene
    with open(run / "accounting.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["atoms_share"] == "" and "absolute values are shown" in rows[0]["shares_note"]
    assert rows[2]["atoms_share"] != "" and rows[2]["shares_note"] == ""


def test_run_tables_follow_input_order(run):
    lines = (run / "accounting.csv").read_text().splitlines()[1:]
    assert [line.split(",")[1] for line in lines] == [CAFFEINE, "CCO", "c1ccccc1CCO"]
    report = json.loads((run / "report.json").read_text())
    assert [e["source"] for e in report["items"]] == ["argument 1", "argument 2", "argument 3"]


def test_shared_scale_puts_the_run_on_one_scale_and_says_so(tmp_path):
    out = tmp_path / "shared"
    assert main(["molecules", "explain", CAFFEINE, "c1ccccc1CCO", "--out", str(out), "--quiet", "--threads", "1",
                 "--shared-scale"]) == 0
    notes = [(f / "atoms.svg").read_text() for f in _folders(out)]
    assert all("shared by every item of this run (--shared-scale)" in svg for svg in notes)
    scales = {svg.split("colour scale ±")[1].split(",")[0] for svg in notes}
    assert len(scales) == 1          # the same full-colour value in every picture
    pairs = [(f / "pairs.svg").read_text() for f in _folders(out)]
    assert all("shared by every item of this run (--shared-scale)" in svg for svg in pairs)
    assert len({svg.split("colour scale ±")[1].split(",")[0] for svg in pairs}) == 1
