"""Parquet in and out: ``--input mols.parquet`` read a batch at a time, and ``--format parquet``
tables that give what the domains' own CSV tables give (atoms.csv, words.csv), row for row.

The Ray engine writes the same tables (tests/test_ray_engine.py compares them with these).
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

import igkit
from igkit.cli.main import main

pandas = pytest.importorskip("pandas", reason="the Parquet tables are read back with pandas")
pa = pytest.importorskip("pyarrow", reason="--format parquet needs pyarrow (pip install 'igkit[parquet]')")


def _needs(domain: str) -> None:
    if domain not in igkit.domains():
        pytest.skip(f"the {domain} domain is not loaded (see `igkit plugins`)")


def _cli(*args: str) -> int:
    return main([*args, "--threads", "1", "--quiet"])


def _parquet(path: Path, **columns) -> Path:
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_parquet_input_without_the_named_column_stops_at_once(tmp_path, capsys):
    _needs("molecules")
    data = _parquet(tmp_path / "mols.parquet", id=["a", "b"], SMILES=["CCO", "c1ccccc1O"])
    start = time.perf_counter()
    assert _cli("molecules", "explain", "--input", str(data), "--out", str(tmp_path / "out")) == 2
    assert time.perf_counter() - start < 30
    err = capsys.readouterr().err
    assert err.startswith("igkit: error:") and "has no column 'smiles' (--smiles-col)" in err
    assert "its columns are id, SMILES" in err and not (tmp_path / "out").exists()


def test_a_parquet_input_reads_like_the_same_rows_in_csv(tmp_path):
    _needs("molecules")
    domain = igkit.get_domain("molecules")
    smiles, ids = ["CCO", "C1CC", None, "c1ccccc1O"], ["m1", "m2", "m3", "m4"]
    data = _parquet(tmp_path / "mols.parquet", mol_id=ids, smiles=smiles)
    items = list(domain.read_items([str(data)], smiles_col="smiles", id_col="mol_id"))
    assert [i.source for i in items] == [f"{data} row {k}" for k in range(1, 5)]
    assert [type(i).__name__ for i in items] == ["Item", "Item", "BadItem", "Item"]
    assert "empty SMILES" in items[2].reason
    table = tmp_path / "mols.csv"
    table.write_text("mol_id,smiles\n" + "".join(f"{i},{s or ''}\n" for i, s in zip(ids, smiles)))
    from_csv = list(domain.read_items([str(table)], smiles_col="smiles", id_col="mol_id"))
    assert [i.digest for i in items if hasattr(i, "digest")] == [
        i.digest for i in from_csv if hasattr(i, "digest")]  # the same molecules: a rerun resumes


def test_molecule_units_give_what_atoms_csv_gives(tmp_path):
    _needs("molecules")
    items = ["c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "not a smiles", "CCN"]
    out = tmp_path / "out"
    assert _cli("molecules", "explain", *items, "--out", str(out), "--format", "parquet",
                "--no-pictures") == 1
    rows = pandas.read_parquet(out / "items")
    assert rows["source"].tolist() == [f"argument {k}" for k in range(1, 5)]
    assert rows["status"].tolist() == ["written", "written", "skipped", "written"]
    units = pandas.read_parquet(out / "units")
    atoms = _csv(out / "atoms.csv")  # the run's table over all molecules, in input order
    assert len(units) == len(atoms)
    assert units["label"].tolist() == [a["element"] for a in atoms]
    assert units["unit"].tolist() == [int(a["atom"]) for a in atoms]
    for column in ("attribution", "attribution_with_pairs"):
        assert units[column].tolist() == pytest.approx([float(a[column]) for a in atoms], rel=1e-4, abs=1e-6)
    by_item = units.groupby("digest", sort=False)["attribution_with_pairs"].sum()
    written = rows[rows["status"] == "written"].set_index("digest")
    assert by_item.to_numpy() == pytest.approx(written.loc[by_item.index, "attribution_sum"].to_numpy(),
                                               rel=1e-3, abs=1e-5)  # atoms + ½ pairs add up to the sum


def test_text_units_give_what_words_csv_gives(tmp_path):
    _needs("text")
    items = ["the cat sat on the mat", "the market fell"]
    out = tmp_path / "out"
    assert _cli("text", "explain", *items, "--out", str(out), "--format", "parquet", "--no-pictures") == 0
    units = pandas.read_parquet(out / "units")
    report_order = pandas.read_parquet(out / "items")["folder"].tolist()
    words = [w for name in report_order for w in _csv(out / name / "words.csv")]
    assert units["label"].tolist() == [w["word"] for w in words]
    assert units["attribution"].tolist() == pytest.approx([float(w["integrated_gradient"]) for w in words],
                                                          rel=1e-3, abs=1e-4)
