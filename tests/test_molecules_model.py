"""Weave network and attribution properties: invariances, padding, completeness, dead features."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from rdkit import Chem

from igkit import integrated_gradients
from igkit.errors import IGInputError, ModelError
from igkit.plugins.molecules.api import explain_graphs
from igkit.plugins.molecules.batching import pack
from igkit.plugins.molecules.checkpoint import load_model, new_model, predict, save_model
from igkit.plugins.molecules.dead_features import dead_feature_groups
from igkit.plugins.molecules.featurize import Featurization, featurize
from igkit.plugins.molecules.readers import parse_smiles, records_from_smiles
from igkit.plugins.molecules.weave import score_function

SIMPLE = Featurization()
PARACETAMOL = "CC(=O)Nc1ccc(O)cc1"


def random_model(arch: str = "w2n4", seed: int = 0):   # SIMPLE keeps pairs up to distance 4
    torch.manual_seed(seed)
    model = new_model(SIMPLE, arch, atom_hidden=16, pair_hidden=16, readout_hidden=16, dense_hidden=16)
    with torch.no_grad():   # a random but fixed batch-norm state, so eval mode is not the identity
        model.net.norm.running_mean.uniform_(-0.5, 0.5)
        model.net.norm.running_var.uniform_(0.5, 2.0)
    model.net.eval()
    return model


def explain(model, smiles_list, **options):
    records, _ = records_from_smiles(smiles_list)
    graphs = [featurize(r.mol, model.featurization) for r in records]
    explanations, problems = explain_graphs(model, records, graphs, **options)
    assert not problems
    return explanations


def test_shuffled_atom_order_gives_same_prediction_and_permuted_attributions():
    model = random_model()
    mol = parse_smiles(PARACETAMOL)
    perm = np.random.default_rng(3).permutation(mol.GetNumAtoms()).tolist()
    shuffled = Chem.RenumberAtoms(mol, perm)          # new atom k is old atom perm[k]
    g, gs = featurize(mol, SIMPLE), featurize(shuffled, SIMPLE)
    p, ps = predict(model, [g]), predict(model, [gs])
    torch.testing.assert_close(p, ps, rtol=1e-5, atol=1e-6)
    e = explain_graphs(model, records_from_smiles([PARACETAMOL])[0], [g], steps=32)[0][0]
    es = explain_graphs(model, records_from_smiles([PARACETAMOL])[0], [gs], steps=32)[0][0]
    np.testing.assert_allclose(es.atom_attributions, e.atom_attributions[perm], rtol=1e-4, atol=1e-7)
    old_pairs = {tuple(sorted(map(int, ij))): v for ij, v in zip(g.pair_index, e.pair_attributions)}
    for (i, j), v in zip(gs.pair_index, es.pair_attributions):
        assert v == pytest.approx(old_pairs[tuple(sorted((perm[i], perm[j])))], rel=1e-4, abs=1e-7)


def test_padding_never_changes_a_prediction_and_gets_no_attribution():
    model = random_model()
    small, big = featurize(parse_smiles("CCO"), SIMPLE), featurize(parse_smiles(PARACETAMOL), SIMPLE)
    forward = score_function(model.net)
    alone = pack([small])
    padded = pack([small, big], n_atoms=30, n_pairs=120)
    with torch.no_grad():
        torch.testing.assert_close(forward(*padded.inputs, *padded.structure)[0],
                                   forward(*alone.inputs, *alone.structure)[0], rtol=1e-5, atol=1e-7)
    kwargs = dict(target=0, steps=24)
    r_alone = integrated_gradients(forward, alone.inputs, forward_args=alone.structure, **kwargs)
    r_pad = integrated_gradients(forward, padded.inputs, forward_args=padded.structure, **kwargs)
    atoms, pairs = r_pad.attribution_tuple
    torch.testing.assert_close(atoms[0, :3], r_alone.attribution_tuple[0][0], rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(pairs[0, :3], r_alone.attribution_tuple[1][0], rtol=1e-4, atol=1e-7)
    assert atoms[0, 3:].abs().max() == 0 and pairs[0, 3:].abs().max() == 0


def test_completeness_within_one_percent_by_default_and_accounting_adds_up():
    model = random_model()
    explanations = explain(model, [PARACETAMOL, "CCO", "C", "[Na+].[Cl-]", "FC(F)(F)c1ccc(cc1)[Se]C"],
                           methods=["grad_x_input"])
    for e in explanations:
        # within 1% of ΔF, or (methane: ΔF = 1.8e-6 at F = 0.49, a few float32 steps) within the
        # documented absolute floor 1e-4 × 1% × F
        summary = e.attribution.summary
        assert summary["converged"]
        assert e.completeness_error <= 0.01 or abs(summary["completeness_delta"]) <= 1e-6 * summary["score_input"]
        acc = e.accounting()
        parts = acc["atoms"] + acc["bonded_pairs"] + acc["non_bonded_pairs"]
        assert parts + acc["unexplained"] == pytest.approx(acc["difference"], abs=1e-9)
        assert e.extra["grad_x_input"][0].shape == (e.graph.n_atoms,)
    single = explanations[2]
    assert single.graph.n_pairs == 0 and single.accounting()["bonded_pairs"] == 0


def test_w1n2_gives_identical_attributions_to_atoms_with_different_neighbours():
    # In OCCCCN, C1 (bonded to O) and C4 (bonded to N) have the same type and the same
    # bond and distance counts: one weave module cannot tell them apart, two can.
    mol = parse_smiles("OCCCCN")
    w1 = explain(random_model("w1n4"), ["OCCCCN"], steps=32)[0].atom_attributions
    w2 = explain(random_model("w2n4"), ["OCCCCN"], steps=32)[0].atom_attributions
    assert w1[1] == pytest.approx(w1[4], rel=1e-5)
    groups = dead_feature_groups(mol, w1)
    assert any({1, 4} <= set(g["atoms"]) for g in groups)
    assert abs(w2[1] - w2[4]) > 1e-3 * np.abs(w2).max()
    assert not any({1, 4} <= set(g["atoms"]) for g in dead_feature_groups(mol, w2))


def test_checkpoint_round_trip_and_featurization_mismatch(tmp_path):
    model = random_model()
    g = featurize(parse_smiles(PARACETAMOL), SIMPLE)
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m.safetensors")
    torch.testing.assert_close(predict(loaded, [g]), predict(model, [g]))
    full = featurize(parse_smiles(PARACETAMOL), Featurization("full"))
    with pytest.raises(IGInputError, match="featurized differently"):
        predict(loaded, [full])
    config = (tmp_path / "m.json").read_text().replace(SIMPLE.fingerprint, "feedfacefeedface")
    (tmp_path / "m.json").write_text(config)
    with pytest.raises(ModelError, match="fingerprint"):
        load_model(tmp_path / "m")
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "missing")


def test_a_large_molecule_and_a_failing_molecule_do_not_stop_the_others(monkeypatch):
    model = random_model()
    explanations = explain(model, ["C" * 120, "CCO"], steps=8)
    assert [e.graph.n_atoms for e in explanations] == [120, 3]
    assert explanations[0].graph.n_pairs == sum(120 - d for d in range(1, 5))

    real_forward = model.net.forward

    def nan_for_large(atoms, *rest):   # a model that breaks on molecules of more than 10 atoms
        out = real_forward(atoms, *rest)
        return torch.where(rest[2].sum(1, keepdim=True) > 10, torch.nan, out)

    monkeypatch.setattr(model.net, "forward", nan_for_large)
    records, _ = records_from_smiles(["CCO", "C" * 20, "CCN"])
    graphs = [featurize(r.mol, SIMPLE) for r in records]
    explanations, problems = explain_graphs(model, records, graphs, steps=8)
    assert [e.smiles for e in explanations] == ["CCO", "CCN"]
    assert problems[0].row == 2 and "non-finite" in problems[0].reason
    with pytest.raises(IGInputError, match="tolerance"):
        explain_graphs(model, records, graphs, tolerance=-1.0)


def test_python_api_explains_with_the_shipped_model():
    from igkit.attribution.evaluation import attribution_auc
    from igkit.plugins.molecules import explain_molecules
    from igkit.plugins.molecules.tasks import make_task

    result = explain_molecules(["Cc1ccccc1CCO", "C1CC"])
    skipped = result.skipped
    assert len(result) == 1 and skipped[0].source == "argument 2" and "unclosed ring" in skipped[0].reason
    e = result.explanations[0]
    gap = e.score_input - e.score_baseline
    assert e.atom_totals.sum() == pytest.approx(gap, rel=0.01)       # atoms + ½ pairs account for all
    truth = make_task("benzene").truth(e.graph.mol)
    assert attribution_auc(e.atom_totals, truth) > 0.9


def test_architecture_names_mean_what_kearnes_et_al_mean():
    from igkit.plugins.molecules.checkpoint import featurization_for
    from igkit.plugins.molecules.weave import ALL_PAIRS_DISTANCE, parse_arch

    assert parse_arch("w2n2") == (2, 2) and parse_arch("W1N2") == (1, 2)
    assert parse_arch("w2ninf") == parse_arch("w2n∞") == (2, ALL_PAIRS_DISTANCE)
    for bad in ("w0n2", "w2n0", "n2", "w2"):
        with pytest.raises(IGInputError, match="WxNy"):
            parse_arch(bad)
    model = new_model("simple", "w2n2", dense_layers=1, atom_hidden=8, pair_hidden=8, readout_hidden=8,
                      dense_hidden=8)
    assert model.featurization == featurization_for("w2n2") == Featurization("simple", 2)
    assert model.net.config.arch == "w2n2" and model.net.config.n_dense == 1
    assert model.net.config.describe().startswith("W2N2 (2 weave modules, pairs up to distance 2, 1 dense layer")
    g = featurize(parse_smiles("CCCCC"), model.featurization)
    assert sorted(g.relations) == ["distance 2"] * 3 + ["single"] * 4          # nothing further than 2 bonds
    assert new_model("simple", "w2ninf").net.config.arch == "w2ninf"
    with pytest.raises(IGInputError, match="--arch w2n4"):
        new_model(SIMPLE, "w2n2")


def test_old_checkpoints_load_under_their_honest_name(tmp_path):
    import json

    shipped = load_model()
    assert shipped.net.config.pair_distance == shipped.featurization.max_distance
    model = random_model("w2n4")
    save_model(model, tmp_path / "old")
    document = json.loads((tmp_path / "old.json").read_text())
    del document["network"]["pair_distance"]                  # what igkit wrote before WxNy meant distance
    (tmp_path / "old.json").write_text(json.dumps(document))
    old = load_model(tmp_path / "old")
    assert old.net.config.arch == "w2n4" and old.net.config.n_dense == 2
    g = featurize(parse_smiles(PARACETAMOL), SIMPLE)
    torch.testing.assert_close(predict(old, [g]), predict(model, [g]))


def test_train_cli_takes_the_pair_distance_from_the_architecture(tmp_path, capsys):
    import csv
    import json

    from igkit.cli.main import main

    data = tmp_path / "d.csv"
    with data.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["smiles", "label"])
        for k in range(24):
            writer.writerow([("c1ccccc1" if k % 2 else "C1CCCCC1") + "C" * (k % 5), k % 2])
    small = ["--atom-hidden", "4", "--pair-hidden", "4", "--readout-hidden", "4", "--dense-hidden", "4",
             "--epochs", "1"]
    assert main(["molecules", "train", "--data", str(data), "--arch", "w1n3", "--dense-layers", "1",
                 *small, "--out", str(tmp_path / "m")]) == 0
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["featurization"]["max_distance"] == 3
    assert saved["network"]["n_weave"] == 1 and saved["network"]["n_dense"] == 1
    assert saved["network"]["pair_distance"] == 3
    assert main(["molecules", "train", "--data", str(data), "--arch", "w2n2", "--max-distance", "4", *small,
                 "--out", str(tmp_path / "x")]) != 0
    assert "y is the pair distance" in capsys.readouterr().err
