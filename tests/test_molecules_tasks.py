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
