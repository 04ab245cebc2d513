"""The ``igkit molecules`` commands end to end, on a rule task built from molecules RDKit ships."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from igkit.cli.main import main
from igkit.plugins.molecules.tasks import RDKIT_MOLECULES

RULE = "benzene"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def rule_model(tmp_path_factory) -> Path:
    """A tiny W2N2 trained through the CLI on 'contains a benzene ring' (900 RDKit molecules)."""
    folder = tmp_path_factory.mktemp("rule")
    subset = folder / "molecules.smi"
    subset.write_text("\n".join(RDKIT_MOLECULES.read_text().splitlines()[:900]) + "\n")
    assert main(["molecules", "make-task", "--rule", RULE, "--input", str(subset),
                 "--out", str(folder / "task.csv")]) == 0
    assert main(["molecules", "train", "--data", str(folder / "task.csv"), "--split-col", "split",
                 "--id-col", "mol_id", "--arch", "w2n2", "--atom-hidden", "16", "--pair-hidden", "16",
                 "--readout-hidden", "16", "--dense-hidden", "32", "--epochs", "6", "--batch-size", "32",
                 "--lr", "0.003", "--out", str(folder / "model")]) == 0
    return folder


def test_train_writes_a_checkpoint_that_learned_the_rule(rule_model):
    info = json.loads((rule_model / "model.json").read_text())["info"]
    assert info["metrics"]["test"]["roc_auc"] > 0.9
    assert (rule_model / "model.safetensors").stat().st_size < 200_000


def test_evaluation_finds_the_rule_atoms_better_than_gradient_times_input(rule_model, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["molecules", "evaluate", "--task", RULE, "--model", str(rule_model / "model"),
                 "--data", str(rule_model / "task.csv"), "--split-col", "split", "--limit", "40",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "evaluation.json").read_text())
    assert summary["scored"] >= 15
    ig, gx = summary["integrated_gradients"]["mean"], summary["grad_x_input"]["mean"]
    assert ig > 0.85 and ig > gx
    assert summary["worst_completeness_error"] <= 0.01
    assert (out / "evaluation.png").stat().st_size > 0 and len(read_csv(out / "per_molecule.csv")) >= 15


def test_explain_writes_tables_pictures_and_reports_bad_rows(rule_model, tmp_path, capsys):
    out = tmp_path / "explain"
    code = main(["molecules", "explain", "c1ccccc1CCO", "C1CC", "[Na+].[O-]C(=O)c1ccccc1", "C",
                 "--model", str(rule_model / "model"), "--methods", "grad_x_input", "--quiet", "--out", str(out)])
    assert code == 1                                   # done, but one item was skipped
    assert "skipped argument 2: invalid SMILES" in capsys.readouterr().err
    atoms = read_csv(out / "atoms.csv")
    assert list(atoms[0]) == ["folder", "molecule", "atom", "element", "attribution", "attribution_with_pairs",
                              "grad_x_input", "grad_x_input_with_pairs"]
    assert {r["molecule"] for r in atoms} == {"c1ccccc1CCO", "[Na+].[O-]C(=O)c1ccccc1", "C"}
    pairs = read_csv(out / "pairs.csv")
    assert list(pairs[0]) == ["folder", "molecule", "atom_i", "atom_j", "relation", "attribution", "grad_x_input"]
    assert {"aromatic", "single", "distance 2"} <= {r["relation"] for r in pairs}
    report = json.loads((out / "report.json").read_text())
    entries = {e["source"]: e for e in report["items"]}
    assert report["status"] == "complete" and report["counts"]["written"] == 3
    assert entries["argument 2"]["status"] == "skipped" and entries["argument 2"]["kind"] == "input"
    folder = out / entries["argument 1"]["folder"]
    assert folder.name.startswith("c1ccccc1CCO-")
    for name in ("atoms.png", "atoms.svg", "pairs.png", "pairs.svg", "atoms.csv", "pairs.csv",
                 "accounting.json", "dead_features.json", "summary.json"):
        assert (folder / name).stat().st_size > 0
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["completeness_error"] <= 0.01 and summary["molecule"] == "c1ccccc1CCO"
    assert summary["atoms"] == 9 and summary["fragments"] == 1 and summary["methods"] == ["grad_x_input"]
    share = summary["accounting"]
    assert share["atoms_share"] + share["bonded_pairs_share"] + share["non_bonded_pairs_share"] == \
        pytest.approx(1, abs=0.011)
    accounting = read_csv(out / "accounting.csv")
    assert [r["molecule"] for r in accounting] == ["c1ccccc1CCO", "[Na+].[O-]C(=O)c1ccccc1", "C"]


def test_generic_explain_route_is_the_same_command(rule_model, tmp_path):
    outs = [tmp_path / "a", tmp_path / "b"]
    args = ["CCO", "c1ccccc1O", "--model", str(rule_model / "model"), "--steps", "16", "--no-pictures", "--quiet"]
    assert main(["molecules", "explain", *args, "--out", str(outs[0])]) == 0
    assert main(["explain", "--domain", "molecules", *args, "--out", str(outs[1])]) == 0
    reports = [json.loads((o / "report.json").read_text()) for o in outs]
    assert reports[0]["items"] == reports[1]["items"] and reports[0]["run_id"] == reports[1]["run_id"]
    assert (outs[0] / "atoms.csv").read_text() == (outs[1] / "atoms.csv").read_text()


def test_explain_reads_a_csv_with_id_column_and_saturation_plots(rule_model, tmp_path, capsys):
    data = tmp_path / "in.csv"
    data.write_text("name,smi\nphenol,c1ccccc1O\nbad,C(C\nhexane,CCCCCC\n")
    out = tmp_path / "explain"
    assert main(["molecules", "explain", "--input", str(data), "--smiles-col", "smi", "--id-col", "name",
                 "--model", str(rule_model / "model"), "--no-pictures", "--quiet", "--out", str(out)]) == 1
    assert f"skipped {data} line 3: invalid SMILES" in capsys.readouterr().err
    assert {r["molecule"] for r in read_csv(out / "atoms.csv")} == {"phenol", "hexane"}
    sat = tmp_path / "sat"
    assert main(["molecules", "saturation", "--input", str(data), "--smiles-col", "smi", "--id-col", "name",
                 "--model", str(rule_model / "model"), "--alphas", "11", "--out", str(sat)]) == 0
    rows = read_csv(sat / "saturation.csv")
    assert len(rows) == 2 * 11 and {r["molecule"] for r in rows} == {"phenol", "hexane"}
    assert (sat / "saturation.png").stat().st_size > 0
    assert json.loads((sat / "saturation.json").read_text())["molecules"] == ["phenol", "hexane"]


def test_mismatched_checkpoint_is_refused_with_a_clear_error(rule_model, tmp_path, capsys):
    bad = tmp_path / "bad"
    (tmp_path / "bad.safetensors").write_bytes((rule_model / "model.safetensors").read_bytes())
    document = json.loads((rule_model / "model.json").read_text())
    document["featurization"]["max_distance"] = 3
    (tmp_path / "bad.json").write_text(json.dumps(document))
    assert main(["molecules", "explain", "CCO", "--model", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("igkit: error:") and "fingerprint" in err


def test_shipped_model_explains_offline(tmp_path):
    out = tmp_path / "shipped"
    assert main(["molecules", "explain", "Cc1ccccc1", "--no-pictures", "--quiet", "--out", str(out)]) == 0
    assert len(read_csv(out / "atoms.csv")) == 7


def test_benzene_csv_loads_with_its_split_and_labels_match_the_rule(shared_data):
    from igkit.plugins.molecules.readers import read_molecules
    from igkit.plugins.molecules.tasks import make_task

    records, problems = read_molecules(shared_data / "benzene" / "benzene.csv", id_col="mol_id")
    assert len(records) == 12_000 and not problems
    splits = [r.fields["split"] for r in records]
    assert splits.count("train") == 10_000 and splits.count("test") == 2_000
    rule = make_task("benzene")
    assert all(rule.label(r.mol) == float(r.fields["label"]) for r in records)
