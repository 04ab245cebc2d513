"""Ground-truth tasks: SMARTS rules with logic, their true atoms, and Crippen logP contributions."""
from __future__ import annotations

import numpy as np
import pytest
from rdkit.Chem import Crippen

from igkit.errors import IGInputError
from igkit.plugins.molecules.readers import parse_smiles
from igkit.plugins.molecules.tasks import make_task, parse_rule


def truth(rule: str, smiles: str) -> list[int]:
    return np.flatnonzero(make_task(rule).truth(parse_smiles(smiles))).tolist()


def test_rule_labels_and_true_atoms_by_hand():
    mol = parse_smiles("FC(=O)c1ccccc1")          # acyl fluoride on a benzene ring
    assert make_task("benzene").label(mol) == 1 and truth("benzene", "FC(=O)c1ccccc1") == [3, 4, 5, 6, 7, 8]
    assert truth("F AND carbonyl", "FC(=O)c1ccccc1") == [0, 1, 2]
    assert truth("Cl OR carbonyl", "FC(=O)c1ccccc1") == [1, 2]          # only the side that holds
    assert truth("benzene AND NOT Cl", "FC(=O)c1ccccc1") == [3, 4, 5, 6, 7, 8]  # an absence has no atoms
    assert make_task("benzene AND NOT F").label(mol) == 0 and truth("benzene AND NOT F", "FC(=O)c1ccccc1") == []
    assert make_task("( Cl OR F ) AND benzene").label(mol) == 1
    assert make_task("NOT benzene").label(parse_smiles("CCO")) == 1


@pytest.mark.parametrize("rule", ["", "benzene AND", "( benzene", "AND F", "C(((", "benzene )"])
def test_malformed_rules_say_what_is_wrong(rule):
    with pytest.raises(IGInputError):
        parse_rule(rule)


@pytest.mark.parametrize("smiles", ["CCOc1ccccc1", "CC(=O)Nc1ccc(O)cc1", "C[N+](C)(C)C", "ClC(Cl)Cl"])
def test_crippen_atom_contributions_add_up_to_the_label(smiles):
    mol = parse_smiles(smiles)
    task = make_task("crippen")
    contributions = task.truth(mol)
    assert contributions.shape == (mol.GetNumAtoms(),)
    assert contributions.sum() == pytest.approx(Crippen.MolLogP(mol), abs=1e-9) == task.label(mol)


def test_named_and_tasks_resolve_to_their_rules_with_two_and_three_fragments():
    from igkit.plugins.molecules.tasks import NAMED_TASKS, fragments

    sizes = {name: len(fragments(make_task(name).rule)) for name in NAMED_TASKS}
    assert sum(n == 2 for n in sizes.values()) >= 3 and sum(n == 3 for n in sizes.values()) >= 2
    assert truth("fluoride_carbonyl", "FC(=O)c1ccccc1") == [0, 1, 2]
    assert truth("alkane_carbonyl", "CCCCCC(C)=O") == [1, 2, 3, 4, 5, 7]     # CH2 chain + C=O
    assert make_task("alkane_carbonyl").label(parse_smiles("CC(C)CCC=O")) == 0  # only two CH2 in a row
    assert truth("amine_ether_benzene", "NCCc1ccc(OC)cc1") == [0, 3, 4, 5, 6, 7, 8, 9, 10]  # not the CH2s
    assert make_task("amine_ether_benzene").label(parse_smiles("NC(=O)c1ccc(OC)cc1")) == 0  # amide ≠ amine


def _records(smiles):
    from igkit.plugins.molecules.readers import records_from_smiles

    records, problems = records_from_smiles(smiles)
    assert not problems
    return records


def test_balanced_selection_is_balanced_fixed_by_seed_and_includes_partial_negatives():
    from igkit.plugins.molecules.tasks import balanced_selection

    pool = _records(["FCC(=O)C"] * 1 + [f"FC{'C' * k}C(=O)N" for k in range(20)]      # positives
                    + [f"FC{'C' * k}N" for k in range(15)]                               # fluoride only
                    + [f"C{'C' * k}C(=O)O" for k in range(15)]                           # carbonyl only
                    + [f"C{'C' * k}N" for k in range(30)])                               # neither
    task = make_task("fluoride_carbonyl")
    chosen, counts = balanced_selection(task, pool, max_positives=12, partial_fraction=0.5, seed=3)
    labels = [task.label(pool[k].mol) for k in chosen]
    assert sum(labels) == 12 and len(labels) == 24
    assert counts["negative_partial"] == 6 and counts["negative_other"] == 6
    again, _ = balanced_selection(task, pool, max_positives=12, partial_fraction=0.5, seed=3)
    assert again == chosen and chosen == sorted(chosen)
    other, _ = balanced_selection(task, pool, max_positives=12, partial_fraction=0.5, seed=4)
    assert other != chosen


def test_counterfactuals_delete_one_fragment_and_keep_the_test_split(tmp_path):
    import csv

    from igkit.plugins.molecules.tasks import break_fragment, fragments, write_task_csv

    task = make_task("amine_ether_benzene")
    amine, ether, benzene = fragments(task.rule)
    mol = parse_smiles("NCCc1ccc(OC)cc1")
    from rdkit import Chem
    assert Chem.MolToSmiles(break_fragment(mol, amine)) == "CCc1ccc(OC)cc1"
    assert not ether.holds(break_fragment(mol, ether)) and amine.holds(break_fragment(mol, ether))
    assert not benzene.holds(break_fragment(mol, benzene))
    records = _records([f"NCC{'C' * k}c1ccc(OC)cc1" for k in range(10)] + [f"NCC{'C' * k}c1ccccc1" for k in range(10)])
    plain = write_task_csv(task, records, tmp_path / "a.csv", seed=1)
    augmented = write_task_csv(task, records, tmp_path / "b.csv", seed=1, counterfactuals=True)
    rows_a = list(csv.DictReader((tmp_path / "a.csv").open()))
    rows_b = list(csv.DictReader((tmp_path / "b.csv").open()))
    assert rows_b[:len(rows_a)] == rows_a and augmented["test"] == plain["test"]
    extra = rows_b[len(rows_a):]
    assert augmented["counterfactual"] == len(extra) > 0
    assert all(r["split"] == "train" and r["label"] == "0" for r in extra)
    train_ids = {r["mol_id"] for r in rows_a if r["split"] == "train"}
    assert {r["mol_id"].rsplit("_without", 1)[0] for r in extra} <= train_ids


def test_make_task_cli_builds_a_named_balanced_task(tmp_path):
    import csv

    from igkit.cli.main import main

    pool = tmp_path / "pool.smi"
    pool.write_text("\n".join([f"FC{'C' * k}C(=O)N m{k}" for k in range(30)]
                              + [f"FC{'C' * k}N f{k}" for k in range(20)]
                              + [f"C{'C' * k}N n{k}" for k in range(30)]) + "\n")
    out = tmp_path / "task.csv"
    assert main(["molecules", "make-task", "--task", "fluoride_carbonyl", "--pool", str(pool),
                 "--max-positives", "20", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 40 and sum(r["label"] == "1" for r in rows) == 20
    assert {r["split"] for r in rows} == {"train", "test"}


def test_clean_training_negatives_keep_the_test_split_and_drop_partial_negatives_from_train():
    from igkit.plugins.molecules.tasks import balanced_selection, clean_training_negatives, fragments, test_flags

    pool = _records([f"FC{'C' * k}C(=O)N" for k in range(20)] + [f"FC{'C' * k}N" for k in range(20)]
                    + [f"C{'C' * k}C(=O)O" for k in range(20)] + [f"C{'C' * k}S" for k in range(40)])
    task = make_task("fluoride_carbonyl")
    chosen, _ = balanced_selection(task, pool, max_positives=20, seed=0)
    records = [pool[k] for k in chosen]
    clean, swapped = clean_training_negatives(task, records, pool, seed=0)
    test = test_flags(len(records), 0.2, 0)
    parts = fragments(task.rule)
    partial = lambda r: not task.rule.holds(r.mol) and any(p.holds(r.mol) for p in parts)  # noqa: E731
    assert swapped == sum(partial(r) for r, t in zip(records, test) if not t) > 0
    assert [r for r, t in zip(clean, test) if t] == [r for r, t in zip(records, test) if t]
    assert not any(partial(r) for r, t in zip(clean, test) if not t)
    assert [task.label(r.mol) for r in clean] == [task.label(r.mol) for r in records]
