"""Featurization and readers of the molecules plugin, checked by hand on small molecules."""
from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem

from igkit.errors import IGInputError
from igkit.plugins.molecules.featurize import ATOM_TYPES, Featurization, featurize, pairs_within
from igkit.plugins.molecules.readers import parse_smiles, read_molecules, records_from_smiles

SIMPLE = Featurization("simple", max_distance=4)
FULL = Featurization("full", max_distance=4)


def pairs_by_atoms(graph):
    return {tuple(map(int, ij)): (graph.relations[k], graph.pairs[k]) for k, ij in enumerate(graph.pair_index)}


def one_hot(names, *on):
    v = np.zeros(len(names), dtype=np.float32)
    for name in on:
        v[names.index(name)] = 1
    return v


def test_simple_feature_names_are_the_kearnes_one_hots():
    assert SIMPLE.atom_feature_names == [f"type={t}" for t in ATOM_TYPES] + ["type=other"]
    assert SIMPLE.pair_feature_names == ["bond=single", "bond=double", "bond=triple", "bond=aromatic",
                                         "distance=2", "distance=3", "distance=4"]


def test_ethanol_by_hand():
    g = featurize(parse_smiles("CCO"), SIMPLE)
    names = SIMPLE.atom_feature_names
    np.testing.assert_array_equal(g.atoms, [one_hot(names, "type=C"), one_hot(names, "type=C"),
                                            one_hot(names, "type=O")])
    pairs = pairs_by_atoms(g)
    p = SIMPLE.pair_feature_names
    assert set(pairs) == {(0, 1), (1, 2), (0, 2)}
    assert pairs[(0, 1)][0] == "single"
    np.testing.assert_array_equal(pairs[(1, 2)][1], one_hot(p, "bond=single"))
    assert pairs[(0, 2)][0] == "distance 2"
    np.testing.assert_array_equal(pairs[(0, 2)][1], one_hot(p, "distance=2"))


def test_bond_kinds_and_benzene_distances():
    nitrile = pairs_by_atoms(featurize(parse_smiles("CC#N"), SIMPLE))
    assert nitrile[(1, 2)][0] == "triple"
    ketone = pairs_by_atoms(featurize(parse_smiles("CC(C)=O"), SIMPLE))
    assert ketone[(1, 3)][0] == "double"
    benzene = featurize(parse_smiles("c1ccccc1"), SIMPLE)
    kinds = sorted(benzene.relations)
    assert kinds.count("aromatic") == 6 and kinds.count("distance 2") == 6 and kinds.count("distance 3") == 3
    short = featurize(parse_smiles("c1ccccc1"), Featurization("simple", max_distance=2))
    assert short.n_pairs == 12  # para pairs (distance 3) are dropped


def test_long_chain_pair_count_is_bounded_by_the_cutoff():
    chain = featurize(parse_smiles("C" * 100), SIMPLE)
    assert chain.n_pairs == sum(100 - d for d in range(1, 5))  # 390, not 100·99/2


def test_unknown_elements_salts_charges_and_single_atoms():
    names = SIMPLE.atom_feature_names
    g = featurize(parse_smiles("C[Si](C)(C)C"), SIMPLE)
    np.testing.assert_array_equal(g.atoms[1], one_hot(names, "type=other"))
    salt = featurize(parse_smiles("[Na+].[Cl-]"), SIMPLE)
    assert salt.n_atoms == 2 and salt.n_pairs == 0  # no pair across fragments
    np.testing.assert_array_equal(salt.atoms, [one_hot(names, "type=other"), one_hot(names, "type=Cl")])
    single = featurize(parse_smiles("C"), SIMPLE)
    assert single.n_atoms == 1 and single.n_pairs == 0 and single.pairs.shape == (0, 7)
    ammonium = featurize(parse_smiles("C[N+](C)(C)C"), FULL)
    assert ammonium.atoms[1, FULL.atom_feature_names.index("formal_charge")] == 1


def test_full_featurization_by_hand():
    names = FULL.atom_feature_names
    alanine = featurize(parse_smiles("C[C@H](N)C(=O)O"), FULL)   # L-alanine: the alpha carbon is S
    assert alanine.atoms[1, names.index("chirality=S")] == 1 and alanine.atoms[1, names.index("chirality=R")] == 0
    assert alanine.atoms[2, names.index("hbond_donor")] == 1
    assert alanine.atoms[4, names.index("hbond_acceptor")] == 1
    assert alanine.atoms[3, names.index("hybridisation=sp2")] == 1
    assert alanine.atoms[0, names.index("hybridisation=sp3")] == 1
    toluene = featurize(parse_smiles("Cc1ccccc1"), FULL)
    assert toluene.atoms[1, names.index("in_ring_size=6")] == 1 and toluene.atoms[0, names.index("in_ring_size=6")] == 0
    assert toluene.atoms[1, names.index("aromatic")] == 1
    pairs = pairs_by_atoms(toluene)
    p = FULL.pair_feature_names
    np.testing.assert_array_equal(pairs[(1, 2)][1], one_hot(p, "bond=aromatic", "distance=1", "same_ring"))
    np.testing.assert_array_equal(pairs[(0, 2)][1], one_hot(p, "distance=2"))


def test_fingerprints_tell_featurizations_apart():
    prints = {Featurization("simple", 4).fingerprint, Featurization("simple", 3).fingerprint,
              Featurization("full", 4).fingerprint}
    assert len(prints) == 3
    config = SIMPLE.config()
    assert Featurization.from_config(config) == SIMPLE
    with pytest.raises(IGInputError, match="retrain"):
        Featurization.from_config({**config, "fingerprint": "0000"})
    with pytest.raises(IGInputError, match="unknown featurization"):
        Featurization("fancy")


def test_bad_smiles_are_reported_with_row_and_reason_and_the_rest_kept():
    records, problems = records_from_smiles(["CCO", "C1CC", "", "N(C)(C)(C)(C)C", "c1ccccc1"])
    assert [r.smiles for r in records] == ["CCO", "c1ccccc1"]
    reasons = {p.row: p.reason for p in problems}
    assert set(reasons) == {2, 3, 4}
    assert "unclosed ring" in reasons[2] and "empty" in reasons[3] and "valence" in reasons[4]
    with pytest.raises(IGInputError, match="invalid SMILES"):
        parse_smiles("C(C")


def test_file_readers(tmp_path):
    csv_file = tmp_path / "mols.csv"
    csv_file.write_text("name,smi,y\nethanol,CCO,1\nbroken,C1CC,0\nphenol,c1ccccc1O,1\n")
    records, problems = read_molecules(csv_file, smiles_col="smi", id_col="name")
    assert [r.id for r in records] == ["ethanol", "phenol"] and records[1].fields["y"] == "1"
    assert problems[0].row == 2 and problems[0].id == "broken"
    with pytest.raises(IGInputError, match="no column 'smiles'"):
        read_molecules(csv_file)
    smi = tmp_path / "mols.smi"
    smi.write_text("# comment\nCCO first\nC1CC second\nCCN\n")
    records, problems = read_molecules(smi)
    assert [r.id for r in records] == ["first", "3"] and problems[0].id == "second"
    sdf = tmp_path / "mols.sdf"
    writer = Chem.SDWriter(str(sdf))
    for smiles, name in (("CCO", "ethanol"), ("c1ccccc1", "benzene")):
        mol = Chem.MolFromSmiles(smiles)
        mol.SetProp("_Name", name)
        writer.write(mol)
    writer.close()
    records, problems = read_molecules(sdf)
    assert [r.id for r in records] == ["ethanol", "benzene"] and not problems


@pytest.mark.parametrize("smiles", ["CC(=O)Nc1ccc(O)cc1", "[Na+].[Cl-]", "C", "C1CC2CCC1CC2c1ccccc1CCN",
                                    "CC(C)Cc1ccc(cc1)C(C)C(=O)O"])
@pytest.mark.parametrize("max_distance", [1, 2, 4, 64])
def test_bounded_pair_search_matches_the_distance_matrix(smiles, max_distance):
    mol = parse_smiles(smiles)
    distance = Chem.GetDistanceMatrix(mol)
    i, j = np.nonzero(np.triu((distance >= 1) & (distance <= max_distance), k=1))
    a, b, d = pairs_within(mol, max_distance)
    np.testing.assert_array_equal(a, i)
    np.testing.assert_array_equal(b, j)
    np.testing.assert_array_equal(d, distance[i, j])


def test_a_10000_atom_molecule_featurises_without_an_atoms_squared_matrix(monkeypatch):
    import tracemalloc

    def no_matrix(*args, **kwargs):
        raise AssertionError("an N x N distance matrix was requested")

    monkeypatch.setattr(Chem, "GetDistanceMatrix", no_matrix)
    mol = parse_smiles("C" * 10_000)
    tracemalloc.start()
    graph = featurize(mol, SIMPLE)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert graph.n_atoms == 10_000 and graph.n_pairs == sum(10_000 - d for d in range(1, 5))
    assert peak < 64 * 2 ** 20            # an N² float64 matrix alone would be 800 MB


def test_the_atom_limit_refuses_a_huge_molecule_before_featurising_and_can_be_raised(monkeypatch):
    from igkit.plugins.molecules import attribution, load_model
    from igkit.plugins.molecules.defaults import DEFAULT_MAX_ATOMS
    from igkit.plugins.molecules.domain import MoleculesDomain
    from igkit.plugins.molecules.readers import MoleculeInput

    model, domain = load_model(), MoleculesDomain()
    huge = MoleculeInput("argument 1", "C" * 10_000)
    calls = []
    monkeypatch.setattr(attribution, "featurize", lambda *a: calls.append(a) or featurize(*a))
    with pytest.raises(IGInputError, match=f"10000 heavy atoms, more than --max-atoms {DEFAULT_MAX_ATOMS}"):
        domain.prepare(model, huge)
    assert not calls                                            # refused before featurising
    prepared = domain.prepare(model, huge, max_atoms=20_000)
    assert prepared.context["graph"].n_atoms == 10_000 and prepared.batch_size >= 1


def test_whitespace_inside_a_smiles_is_refused_but_a_smi_name_is_fine(tmp_path):
    with pytest.raises(IGInputError, match="whitespace"):
        parse_smiles("CC O")
    records, problems = records_from_smiles(["CC O", " CCO "])
    assert [r.smiles for r in records] == ["CCO"] and "RDKit would read only 'CC'" in problems[0].reason
    smi = tmp_path / "named.smi"
    smi.write_text("CCO ethyl alcohol\nc1ccccc1\tbenzene\n")
    records, problems = read_molecules(smi)
    assert [(r.smiles, r.id) for r in records] == [("CCO", "ethyl alcohol"), ("c1ccccc1", "benzene")]
    assert not problems
