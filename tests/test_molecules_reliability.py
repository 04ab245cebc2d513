"""The molecules domain on the one explain path, fed bad, colliding, replaced and interrupted input.

Each test is one category of issue 10's "Why" list: it asserts the right result (the
same numbers as explaining that molecule alone) or a clear ``igkit: error:`` line, and
that the other molecules' results are intact. The shipped model and a fixed 32-point
rule keep every run to a fraction of a second.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import igkit
from igkit.cli.main import main
from igkit.plugins.molecules import attribution
from igkit.plugins.molecules.checkpoint import DEFAULT_MODEL

#: few fixed steps keep the tests fast; every comparison uses the same rule, so its error is no concern
pytestmark = pytest.mark.filterwarnings("ignore::igkit.errors.IgkitWarning")
FAST = ["--steps", "32", "--no-pictures", "--quiet"]


def explain(capsys, out: Path, *args) -> tuple[int, str]:
    code = main(["molecules", "explain", *map(str, args), "--out", str(out)])
    return code, capsys.readouterr().err


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def by_source(out: Path) -> dict[str, dict]:
    return {e["source"]: e for e in report(out)["items"]}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def alone(smiles: str, **settings) -> np.ndarray:
    """Per-atom attributions of one molecule explained on its own, through the Python API."""
    result = igkit.explain("molecules", [smiles], integration={"steps": 32}, **settings)
    assert len(result) == 1, result.skipped
    return result.explanations[0].atom_attributions


def assert_folder_matches(folder: Path, smiles: str, **settings) -> None:
    """The folder holds this molecule, and its numbers are those of explaining it alone."""
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["smiles"] == smiles
    rows = read_csv(folder / "atoms.csv")
    np.testing.assert_allclose([float(r["attribution"]) for r in rows], alone(smiles, **settings),
                               rtol=1e-4, atol=1e-7)


def assert_clean_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.startswith("igkit: error:") and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


# ------------------------------------------------------------------------------- colliding names
def test_colliding_names_each_get_their_own_folder_and_their_own_numbers(tmp_path, capsys):
    data = tmp_path / "mols.csv"
    data.write_text("mol_id,smiles\nm1,CCO\nm1,CCN\nm1,CCO\né,c1ccccc1O\nü,c1ccccc1N\n", encoding="utf-8")
    out = tmp_path / "out"
    # two SMILES that differ only in characters a folder name cannot hold
    code, _ = explain(capsys, out, "C[C@H](N)C=O", "C[C@@H](N)C=O", "--input", data, "--id-col", "mol_id",
                      *FAST)
    assert code == 0
    items = by_source(out)
    line = {n: items[f"{data} line {n}"] for n in range(2, 7)}
    folders = [items["argument 1"]["folder"], items["argument 2"]["folder"],
               *(line[n]["folder"] for n in (2, 3, 5, 6))]
    assert len(set(folders)) == 6                                     # nothing overwritten
    assert line[4]["status"] == "duplicate" and line[4]["folder"] == line[2]["folder"]  # identical row
    assert line[2]["folder"] != line[3]["folder"]                     # same id, other molecule
    for folder, smiles in zip(folders, ["C[C@H](N)C=O", "C[C@@H](N)C=O", "CCO", "CCN", "c1ccccc1O",
                                        "c1ccccc1N"]):
        assert_folder_matches(out / folder, smiles)
    atoms = read_csv(out / "atoms.csv")
    assert {r["folder"] for r in atoms} == set(folders)
    assert sum(r["folder"] == line[5]["folder"] and r["molecule"] == "é" for r in atoms) == 7


def test_files_of_one_name_in_two_folders_and_non_ascii_file_names_keep_their_rows_apart(tmp_path, capsys):
    first, second = tmp_path / "a" / "молекулы.csv", tmp_path / "b" / "молекулы.csv"
    for path, smiles in ((first, "CCO"), (second, "CCN")):
        path.parent.mkdir()
        path.write_text(f"mol_id,smiles\nm1,{smiles}\nshared,c1ccccc1O\n", encoding="utf-8")
    out = tmp_path / "out"
    assert explain(capsys, out, first, second, "--id-col", "mol_id", *FAST)[0] == 0
    items = by_source(out)
    assert items[f"{first} line 2"]["folder"] != items[f"{second} line 2"]["folder"]
    assert items[f"{second} line 3"]["status"] == "duplicate"          # the same row in both files
    assert items[f"{second} line 3"]["folder"] == items[f"{first} line 3"]["folder"]
    assert_folder_matches(out / items[f"{first} line 2"]["folder"], "CCO")
    assert_folder_matches(out / items[f"{second} line 2"]["folder"], "CCN")


# ------------------------------------------------------------------------------- replaced input
def test_a_replaced_input_file_is_recomputed_not_served_from_the_old_run(tmp_path, capsys):
    data = tmp_path / "mols.csv"
    data.write_text("mol_id,smiles\na,CCO\nb,CCN\n")
    out = tmp_path / "out"
    assert explain(capsys, out, "--input", data, "--id-col", "mol_id", *FAST)[0] == 0
    before = by_source(out)
    data.write_text("mol_id,smiles\na,CCO\nb,c1ccccc1N\n")            # row b replaced, same name
    assert explain(capsys, out, "--input", data, "--id-col", "mol_id", *FAST)[0] == 0
    after = by_source(out)
    assert after[f"{data} line 2"]["status"] == "kept"
    assert after[f"{data} line 3"]["status"] == "written"
    assert after[f"{data} line 3"]["folder"] != before[f"{data} line 3"]["folder"]
    assert_folder_matches(out / after[f"{data} line 3"]["folder"], "c1ccccc1N")
    rows = read_csv(out / "atoms.csv")
    assert len([r for r in rows if r["molecule"] == "b"]) == 7         # the new molecule b only
    assert {r["folder"] for r in rows} == {after[f"{data} line {n}"]["folder"] for n in (2, 3)}


# ------------------------------------------------------------------------------- other settings
def test_a_rerun_with_other_settings_is_refused_and_overwrite_leaves_nothing_stale(tmp_path, capsys):
    out = tmp_path / "out"
    assert explain(capsys, out, "c1ccccc1O", "CCO", "--steps", "32", "--quiet")[0] == 0
    first = by_source(out)["argument 1"]["folder"]
    assert (out / first / "atoms.png").is_file()
    code, err = explain(capsys, out, "c1ccccc1O", "--score", "probability", *FAST)
    assert_clean_error(code, err, "other settings", "--overwrite")
    assert (out / first / "atoms.png").is_file() and report(out)["counts"]["written"] == 2   # untouched
    assert explain(capsys, out, "c1ccccc1O", "--score", "probability", "--overwrite", *FAST)[0] == 0
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert [p.name for p in folders] == [by_source(out)["argument 1"]["folder"]]   # CCO's folder is gone
    assert not list(out.rglob("*.png")) and not list(out.rglob("*.svg"))           # no stale pictures
    summary = json.loads((folders[0] / "summary.json").read_text())
    assert summary["target"] == "label (probability)"
    assert_folder_matches(folders[0], "c1ccccc1O", score="probability")


# ------------------------------------------------------------------------------- interrupt
MOLECULES = ["CCO", "c1ccccc1CCO", "CC(=O)Nc1ccc(O)cc1", "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
             "OC(=O)Cc1ccccc1Nc1c(Cl)cccc1Cl"]


def test_an_interrupt_keeps_finished_molecules_and_the_rerun_computes_only_the_rest(tmp_path, capsys,
                                                                                     monkeypatch):
    real = attribution.score_function

    def interrupted_at_15_atoms(net, score="probability"):
        forward = real(net, score)

        def f(atoms, pairs, pair_index, atom_mask, pair_mask):
            if int(atom_mask.sum(1).max()) == 15:       # Ctrl-C while ibuprofen (15 atoms) is attributed
                raise KeyboardInterrupt
            return forward(atoms, pairs, pair_index, atom_mask, pair_mask)
        return f

    monkeypatch.setattr(attribution, "score_function", interrupted_at_15_atoms)
    out = tmp_path / "out"
    code, err = explain(capsys, out, *MOLECULES, *FAST)
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert report(out)["status"] == "interrupted" and report(out)["counts"]["written"] == 3
    done = {e["source"]: e["folder"] for e in report(out)["items"]}
    assert set(done) == {"argument 1", "argument 2", "argument 3"}
    for k in (1, 2, 3):
        assert_folder_matches(out / done[f"argument {k}"], MOLECULES[k - 1])
    assert not list(out.glob(".partial-*"))

    monkeypatch.setattr(attribution, "score_function", real)
    prepared = []
    real_prepare = attribution.prepare_molecule
    monkeypatch.setattr(attribution, "prepare_molecule",
                        lambda model, value, **kw: prepared.append(value.smiles) or real_prepare(model, value, **kw))
    assert explain(capsys, out, *MOLECULES, *FAST)[0] == 0
    assert prepared == MOLECULES[3:]                                   # only the rest was computed
    assert report(out)["status"] == "complete" and report(out)["counts"] == {
        "written": 2, "kept": 3, "duplicate": 0, "skipped": 0}
    assert [r["molecule"] for r in read_csv(out / "accounting.csv")] == MOLECULES


# ------------------------------------------------------------------------------- encodings
def test_bom_and_crlf_files_read_as_plain_utf8(tmp_path, capsys):
    from rdkit import Chem

    table = tmp_path / "mols.csv"
    table.write_bytes("mol_id,smiles\r\nethanol,CCO\r\nphénol,c1ccccc1O\r\n".encode("utf-8-sig"))
    smi = tmp_path / "mols.smi"
    smi.write_bytes("c1ccccc1N aniline\r\n".encode("utf-8-sig"))
    sdf = tmp_path / "mols.sdf"
    writer = Chem.SDWriter(str(sdf))
    mol = Chem.MolFromSmiles("CC(=O)O")
    mol.SetProp("_Name", "acetic acid")
    writer.write(mol)
    writer.close()
    sdf.write_bytes(b"\xef\xbb\xbf" + sdf.read_bytes().replace(b"\n", b"\r\n"))
    out = tmp_path / "out"
    code, err = explain(capsys, out, smi, sdf, "--input", table, "--id-col", "mol_id", *FAST)
    assert code == 0, err
    items = by_source(out)
    assert set(items) == {f"{smi} line 1", f"{sdf} record 1 (line 1)", f"{table} line 2", f"{table} line 3"}
    names = {json.loads((out / e["folder"] / "summary.json").read_text())["molecule"] for e in items.values()}
    assert names == {"aniline", "acetic acid", "ethanol", "phénol"}
    assert_folder_matches(out / items[f"{table} line 3"]["folder"], "c1ccccc1O")


def test_a_file_in_another_encoding_is_a_clear_error_naming_the_line(tmp_path, capsys):
    data = tmp_path / "latin1.csv"
    data.write_bytes("mol_id,smiles\nok,CCO\ncafé,CCN\n".encode("latin-1"))
    code, err = explain(capsys, tmp_path / "out", "--input", data, "--id-col", "mol_id", *FAST)
    assert_clean_error(code, err, f"{data}, line 3", "not UTF-8")
    assert not (tmp_path / "out").exists()                               # refused before any work


# ------------------------------------------------------------------------------- bad items
def test_bad_molecules_are_skipped_with_reasons_and_the_others_are_intact(tmp_path, capsys):
    data = tmp_path / "mols.csv"
    huge = "C" * 200
    data.write_text(f"mol_id,smiles\ngood,CCO\nring,C1CC\nspace,CC O\nempty,\nhuge,{huge}\nphenol,c1ccccc1O\n")
    out = tmp_path / "out"
    code, err = explain(capsys, out, "--input", data, "--id-col", "mol_id", *FAST)
    assert code == 1 and "Traceback" not in err
    items = by_source(out)
    reasons = {n: items[f"{data} line {n}"].get("reason", "") for n in range(2, 8)}
    assert "invalid SMILES" in reasons[3] and "unclosed ring" in reasons[3]
    assert "whitespace" in reasons[4] and "RDKit would read only 'CC'" in reasons[4]
    assert "empty SMILES" in reasons[5]
    assert "200 heavy atoms, more than --max-atoms 150" in reasons[6]
    assert all(items[f"{data} line {n}"]["kind"] == "input" for n in (3, 4, 5, 6))
    assert_folder_matches(out / items[f"{data} line 2"]["folder"], "CCO")
    assert_folder_matches(out / items[f"{data} line 7"]["folder"], "c1ccccc1O")
    assert {r["molecule"] for r in read_csv(out / "atoms.csv")} == {"good", "phenol"}
    raised = tmp_path / "raised"
    assert explain(capsys, raised, "--input", data, "--id-col", "mol_id", "--max-atoms", "300", *FAST)[0] == 1
    assert by_source(raised)[f"{data} line 6"]["status"] == "written"


def test_an_unexpected_error_in_one_molecule_is_an_internal_skip_and_the_batch_goes_on(tmp_path, capsys,
                                                                                        monkeypatch):
    real = attribution.featurize

    def broken_for_nitrogen(mol, featurization):
        if any(a.GetSymbol() == "N" for a in mol.GetAtoms()):
            raise ZeroDivisionError("a bug")
        return real(mol, featurization)

    monkeypatch.setattr(attribution, "featurize", broken_for_nitrogen)
    out = tmp_path / "out"
    code, _ = explain(capsys, out, "CCO", "CCN", "c1ccccc1O", *FAST)
    assert code == 1
    entry = by_source(out)["argument 2"]
    assert entry["kind"] == "internal" and "ZeroDivisionError" in entry["traceback"]
    monkeypatch.setattr(attribution, "featurize", real)
    for k, smiles in ((1, "CCO"), (3, "c1ccccc1O")):
        assert_folder_matches(out / by_source(out)[f"argument {k}"]["folder"], smiles)


# ------------------------------------------------------------------------------- exit codes
def test_exit_codes(tmp_path, capsys):
    assert explain(capsys, tmp_path / "a", "CCO", *FAST)[0] == 0
    assert explain(capsys, tmp_path / "b", "CCO", "C1CC", *FAST)[0] == 1
    code, err = explain(capsys, tmp_path / "c", *FAST)
    assert_clean_error(code, err, "no molecules items given")
    for bad in (["--max-atoms", "0"], ["--max-atoms", "-1"], ["--molecules-per-call", "4"]):
        with pytest.raises(SystemExit) as exit_:
            main(["molecules", "explain", "CCO", *bad, "--out", str(tmp_path / "d")])
        assert exit_.value.code == 2
    assert "expected a whole number ≥ 1" in capsys.readouterr().err
    # 130 (interrupted): test_an_interrupt_keeps_finished_molecules_and_the_rerun_computes_only_the_rest


# ------------------------------------------------------------------------------- no tracebacks
def _checkpoint(tmp_path: Path, name: str) -> Path:
    base = tmp_path / name
    shutil.copy(DEFAULT_MODEL.with_suffix(".safetensors"), base.with_suffix(".safetensors"))
    shutil.copy(DEFAULT_MODEL.with_suffix(".json"), base.with_suffix(".json"))
    return base


def _broken_checkpoints(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    missing = _checkpoint(tmp_path, "missing_json")
    missing.with_suffix(".json").unlink()
    broken = _checkpoint(tmp_path, "broken_json")
    broken.with_suffix(".json").write_text('{"format": "igkit-molecules-weave/1", ')
    truncated = _checkpoint(tmp_path, "truncated")
    weights = truncated.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:200])
    shapes = _checkpoint(tmp_path, "shapes")
    document = json.loads(shapes.with_suffix(".json").read_text())
    document["network"]["atom_hidden"] = 24
    shapes.with_suffix(".json").write_text(json.dumps(document))
    foreign = _checkpoint(tmp_path, "foreign")
    foreign.with_suffix(".json").write_text('{"format": "something else"}')
    incomplete = _checkpoint(tmp_path, "incomplete")
    document = json.loads(incomplete.with_suffix(".json").read_text())
    del document["network"]
    incomplete.with_suffix(".json").write_text(json.dumps(document))
    return {"missing json": (missing, "does not exist"), "broken json": (broken, "unreadable"),
            "truncated safetensors": (truncated, "damaged"), "wrong shapes": (shapes, "does not fit"),
            "not a molecules checkpoint": (foreign, "not an igkit molecules checkpoint"),
            "no network": (incomplete, "lacks 'network'")}


def test_malformed_checkpoints_end_in_one_error_line(tmp_path, capsys):
    for case, (path, needle) in _broken_checkpoints(tmp_path).items():
        code, err = explain(capsys, tmp_path / case.replace(" ", "_"), "CCO", "--model", path, *FAST)
        assert_clean_error(code, err, needle, str(path.name))


def test_user_errors_end_in_one_error_line_before_any_work(tmp_path, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("")
    assert_clean_error(*explain(capsys, a_file, "CCO", *FAST), "is a file")
    assert_clean_error(*explain(capsys, tmp_path / "o1", "--input", tmp_path / "nope.csv", *FAST),
                       "does not exist")
    table = tmp_path / "t.csv"
    table.write_text("\ufeffmol_id,smi\nx,CCO\n")
    assert_clean_error(*explain(capsys, tmp_path / "o2", "--input", table, *FAST),
                       "no column 'smiles' (--smiles-col)", "mol_id, smi")
    assert_clean_error(*explain(capsys, tmp_path / "o3", "--input", table, "--smiles-col", "smi",
                                "--id-col", "name", *FAST), "no column 'name' (--id-col)")
    empty = tmp_path / "empty.sdf"
    empty.write_text("\n\n")
    assert_clean_error(*explain(capsys, tmp_path / "o4", "--input", empty, *FAST), "holds no molecules")
    assert_clean_error(*explain(capsys, tmp_path / "o5", "CCO", "--task", "toxicity", *FAST),
                       "no task 'toxicity'", "label")
    assert not any((tmp_path / f"o{k}").exists() for k in range(1, 6))


def test_the_python_api_skips_like_the_command_and_matches_its_numbers(tmp_path, capsys):
    from igkit.plugins.molecules import explain_molecules, load_model

    result = explain_molecules(["c1ccccc1O", "CC O", "C" * 200], load_model(), integration={"steps": 32})
    assert [e.smiles for e in result] == ["c1ccccc1O"]
    assert [(s.source, s.kind) for s in result.skipped] == [("argument 2", "input"), ("argument 3", "input")]
    out = tmp_path / "out"
    assert explain(capsys, out, "c1ccccc1O", *FAST)[0] == 0
    rows = read_csv(out / by_source(out)["argument 1"]["folder"] / "atoms.csv")
    np.testing.assert_allclose([float(r["attribution"]) for r in rows], result[0].atom_attributions,
                               rtol=1e-6, atol=1e-9)
