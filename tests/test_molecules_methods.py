"""Attribution methods on molecules: through the one runner, side by side, scored on known answers.

The shipped benzene model (plugins/molecules/models) and untrained weave networks keep these fast.
"""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import igkit
from igkit.cli.main import main

SMILES = ["c1ccccc1CCO", "c1ccccc1CCCO", "CC(=O)Nc1ccc(O)cc1", "OC(=O)c1ccccc1"]


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def model():
    from igkit.plugins.molecules.checkpoint import load_model

    return load_model()


def _forward(model, graph):
    from igkit.plugins.molecules.batching import pack
    from igkit.plugins.molecules.weave import score_function

    batch = pack([graph])
    forward = score_function(model.net, "probability")
    return batch, lambda atoms, pairs: float(forward(atoms, pairs, *batch.structure)[0, 0])


def test_every_listed_method_runs_through_the_runner(model):
    methods = ["saliency", "grad_x_input", "occlusion", "grad_cam", "smoothgrad", "expected_gradients",
               "interior_gradient"]
    found = igkit.explain("molecules", SMILES, model=model, methods=methods, integration={"steps": 32})
    assert not found.skipped and len(found.explanations) == len(SMILES)
    for e in found.explanations:
        assert list(e.attribution.methods) == methods
        for name in methods:
            atoms, pairs = e.extra[name]
            assert atoms.shape == (e.graph.n_atoms,) and pairs.shape == (e.graph.n_pairs,)
            assert np.isfinite(atoms).all()
            assert np.isfinite(pairs).all() == (name != "grad_cam")   # Grad-CAM maps atoms only
            assert e.extra_totals[name].shape == (e.graph.n_atoms,)


def test_occlusion_units_are_atoms_and_pairs_with_the_exact_drop(model):
    found = igkit.explain("molecules", SMILES[:2], model=model, methods=["occlusion"], integration={"steps": 8},
                          score="probability")
    e = found.explanations[1]                       # padded beside the smaller molecule of its size bucket
    batch, score = _forward(model, e.graph)
    atoms, pairs = batch.inputs
    full = score(atoms, pairs)
    own, pair_values = e.extra["occlusion"]
    for i in (0, 3, e.graph.n_atoms - 1):
        zeroed = atoms.clone()
        zeroed[0, i] = 0
        assert own[i] == pytest.approx(full - score(zeroed, pairs), abs=1e-6)
    for k in (0, e.graph.n_pairs - 1):
        zeroed = pairs.clone()
        zeroed[0, k] = 0
        assert pair_values[k] == pytest.approx(full - score(atoms, zeroed), abs=1e-6)
    np.testing.assert_allclose(e.extra_totals["occlusion"], own + _half_pairs(e.graph, pair_values))


def _half_pairs(graph, pairs):
    out = np.zeros(graph.n_atoms)
    for (i, j), v in zip(graph.pair_index, pairs):
        out[i] += v / 2
        out[j] += v / 2
    return out


def test_grad_cam_is_the_cam_over_real_atoms_and_does_not_depend_on_padding(model):
    alone = igkit.explain("molecules", [SMILES[0]], model=model, methods=["grad_cam", "saliency"],
                          integration={"steps": 8}, score="probability").explanations[0]
    padded = igkit.explain("molecules", [SMILES[1], SMILES[0]], model=model, methods=["grad_cam", "saliency"],
                           integration={"steps": 8}, score="probability").explanations[1]
    assert padded.attribution.methods["grad_cam"][0].shape[1] > alone.graph.n_atoms   # really padded
    for name in ("grad_cam", "saliency"):
        np.testing.assert_allclose(padded.extra[name][0], alone.extra[name][0], rtol=1e-4, atol=1e-7)
    # by hand: weights = mean gradient over the molecule's atoms of the last atom layer's channels
    batch, _ = _forward(model, alone.graph)
    acts = []
    handle = model.net.atom_readout.register_forward_hook(lambda m, i, out: acts.append(out))
    try:
        out = torch.sigmoid(model.net(*batch.inputs, *batch.structure))[0, 0]
    finally:
        handle.remove()
    grad, = torch.autograd.grad(out, acts[0])
    n = alone.graph.n_atoms
    cam = torch.relu((grad[0, :n].mean(0) * acts[0][0, :n]).sum(-1)).detach().numpy()
    np.testing.assert_allclose(alone.extra["grad_cam"][0], cam, rtol=1e-4, atol=1e-8)


def test_methods_a_weave_network_cannot_serve_are_refused_up_front_with_a_reason(model, tmp_path, capsys):
    from igkit.cli.main import main

    for name, words in (("guided_backprop", "torch.relu"), ("blur_ig", "images"), ("xrai", "images")):
        with pytest.raises(igkit.IGInputError, match=f"{name} is unavailable for molecules.*{words}"):
            igkit.explain("molecules", ["CCO"], model=model, methods=[name], integration={"steps": 8})
        assert main(["molecules", "explain", "CCO", "--methods", name, "--out", str(tmp_path / name)]) == 2
        assert capsys.readouterr().err.startswith("igkit: error:") and not (tmp_path / name).exists()


def test_expected_gradients_references_keep_the_graph_and_do_not_depend_on_padding(model):
    from igkit.plugins.molecules.methods import REFERENCE_DRAWS, reference_stack

    atoms, pairs = reference_stack(model.featurization, 12, 70)
    assert atoms.shape == (1 + REFERENCE_DRAWS, 12, len(model.featurization.atom_feature_names))
    assert pairs.shape == (1 + REFERENCE_DRAWS, 70, len(model.featurization.pair_feature_names))
    assert atoms[0].abs().sum() == 0 and pairs[0].abs().sum() == 0          # reference 0 is IG's zero
    assert (atoms[1:, :, :11].sum(-1) == 1).all()                           # drawn rows are real atom types
    more_atoms, more_pairs = reference_stack(model.featurization, 40, 200)
    assert torch.equal(more_atoms[:, :12], atoms) and torch.equal(more_pairs[:, :70], pairs)


def test_side_by_side_sheets_and_columns_agree_with_the_explanations(model, tmp_path, capsys):
    methods, SMILES = "saliency,occlusion,grad_cam", globals()["SMILES"][1:]
    out = tmp_path / "run"
    code = main(["molecules", "explain", *SMILES, "--methods", methods, "--steps", "16", "--quiet", "--threads", "1",
                 "--out", str(out)])
    assert code == 0
    found = igkit.explain("molecules", SMILES, model=model, methods=methods.split(","),
                          integration={"steps": 16})
    atoms = read_csv(out / "atoms.csv")
    assert list(atoms[0])[-6:] == ["saliency", "saliency_with_pairs", "occlusion", "occlusion_with_pairs",
                                   "grad_cam", "grad_cam_with_pairs"]
    pairs = read_csv(out / "pairs.csv")
    by_molecule = {e.id: e for e in found.explanations}
    for name in methods.split(","):
        for e in found.explanations:
            rows = [r for r in atoms if r["molecule"] == e.id]
            np.testing.assert_allclose([float(r[name]) for r in rows], e.extra[name][0], rtol=1e-5, atol=1e-8)
            np.testing.assert_allclose([float(r[f"{name}_with_pairs"]) for r in rows], e.extra_totals[name],
                                       rtol=1e-5, atol=1e-8)
    for e in found.explanations:                 # with_pairs = own + half of each pair, from the CSVs alone
        rows = [r for r in atoms if r["molecule"] == e.id]
        prs = [r for r in pairs if r["molecule"] == e.id]
        assert all(r["grad_cam"] == "" for r in prs)                       # no pair values for Grad-CAM
        own = np.array([float(r["occlusion"]) for r in rows])
        half = np.zeros(len(rows))
        for r in prs:
            half[int(r["atom_i"])] += float(r["occlusion"]) / 2
            half[int(r["atom_j"])] += float(r["occlusion"]) / 2
        np.testing.assert_allclose([float(r["occlusion_with_pairs"]) for r in rows], own + half,
                                   rtol=1e-5, atol=1e-7)
    report = json.loads((out / "report.json").read_text())
    for entry in report["items"]:
        folder = out / entry["folder"]
        assert (folder / "methods.png").stat().st_size > 0 and (folder / "molecule.mol").is_file()
    assert (out / "methods.png").stat().st_size > 0
    assert set(by_molecule) == {r["molecule"] for r in atoms}
    # the run sheet is rebuilt from the folders when a rerun finds them all done
    (out / "methods.png").unlink()
    assert main(["molecules", "explain", *SMILES, "--methods", methods, "--steps", "16", "--quiet", "--threads", "1",
                 "--out", str(out)]) == 0
    assert (out / "methods.png").stat().st_size > 0


def test_no_pictures_writes_no_sheets(model, tmp_path):
    out = tmp_path / "tables"
    assert main(["molecules", "explain", "CCO", "--methods", "saliency", "--steps", "8", "--no-pictures",
                 "--quiet", "--threads", "1", "--out", str(out)]) == 0
    assert not list(out.rglob("*.png")) and "saliency_with_pairs" in read_csv(out / "atoms.csv")[0]


def test_score_methods_on_the_benzene_task_writes_the_table_and_ranks_ig_high(tmp_path, capsys):
    out = tmp_path / "scores"
    assert main(["molecules", "score-methods", "--task", "benzene", "--limit", "6",
                 "--methods", "saliency,grad_x_input,occlusion,grad_cam", "--steps", "32", "--quiet", "--threads", "1",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "atom_auroc_with_pairs" in printed and "integrated_gradients" in printed
    table = read_csv(out / "scores.csv")
    assert [r["method"] for r in table] == ["integrated_gradients", "saliency", "grad_x_input", "occlusion",
                                            "grad_cam"]
    assert list(table[0]) == ["method", "atom_auroc_with_pairs", "atom_auroc_own", "atom_auroc_with_pairs_median",
                              "atom_auroc_own_median", "top_atom_rate", "fragments_rate", "cpu_seconds_per_molecule"]
    summary = json.loads((out / "scores.json").read_text())
    assert summary["scored"] == 6 and summary["metric"] == "atom_auroc"
    assert summary["command"].startswith("igkit molecules score-methods --task benzene")
    ig = {r["method"]: r for r in summary["table"]}["integrated_gradients"]
    assert ig["atom_auroc_with_pairs"] > 0.8 and ig["cpu_seconds_per_molecule"] > 0
    per_molecule = read_csv(out / "per_molecule.csv")
    assert len(per_molecule) == 6
    mean = np.mean([float(r["occlusion_with_pairs"]) for r in per_molecule])
    assert float(table[3]["atom_auroc_with_pairs"]) == pytest.approx(mean, rel=1e-6)
    markdown = (out / "scores.md").read_text()
    assert markdown.count("\n| ") == 7 and "`igkit molecules score-methods --task benzene" in markdown
    for name in ("scores.png", "examples.png"):
        assert (out / name).stat().st_size > 0


def test_score_methods_on_an_and_rule_and_on_crippen(tmp_path, capsys):
    from igkit.plugins.molecules.checkpoint import new_model, save_model

    data = tmp_path / "mols.csv"
    data.write_text("smiles\nO=C(F)c1ccccc1\nCC(=O)CCF\nFCCC(=O)O\nCCO\nO=Cc1ccc(F)cc1\n")
    out = tmp_path / "and"
    assert main(["molecules", "score-methods", "--task", "F AND carbonyl", "--data", str(data),
                 "--methods", "grad_x_input", "--steps", "16", "--quiet", "--threads", "1", "--out", str(out)]) == 0
    summary = json.loads((out / "scores.json").read_text())
    assert summary["scored"] == 4 and {r["method"] for r in summary["table"]} == {"integrated_gradients",
                                                                                   "grad_x_input"}
    assert all(0 <= r["fragments_rate"] <= 1 for r in summary["table"])
    torch.manual_seed(0)
    regression = new_model("simple", "w2n2", ["logp"], "regression", atom_hidden=8, pair_hidden=8,
                           readout_hidden=8, dense_hidden=8)
    save_model(regression, tmp_path / "crippen")
    out = tmp_path / "crippen_scores"
    assert main(["molecules", "score-methods", "--task", "crippen", "--model", str(tmp_path / "crippen"),
                 "--data", str(data), "--methods", "saliency", "--steps", "16", "--quiet", "--threads", "1",
                 "--out", str(out)]) == 0
    table = read_csv(out / "scores.csv")
    assert list(table[0])[:3] == ["method", "kendall_tau_with_pairs", "kendall_tau_own"]
    assert "top_atom_rate" not in table[0]
    assert all(-1 <= float(r["kendall_tau_with_pairs"]) <= 1 for r in table)


def test_score_methods_refuses_an_unknown_method_before_any_work(tmp_path, capsys):
    code = main(["molecules", "score-methods", "--task", "benzene", "--methods", "saliency,telepathy",
                 "--threads", "1", "--out", str(tmp_path / "x")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("igkit: error:") and "telepathy" in err
    assert not (tmp_path / "x").exists()


def test_a_sheet_with_missing_values_says_so_in_a_legend(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401  (matplotlib present)
    from rdkit import Chem

    from igkit.plugins.molecules import render

    mol = Chem.MolFromSmiles("CCO")
    seen = []
    original = render.Patch

    def spy(**kwargs):
        seen.append(kwargs.get("label", ""))
        return original(**kwargs)

    render.Patch = spy
    try:
        render.method_sheet([mol], [[np.array([0.1, np.nan, -0.2])]], ["m"], ["ethanol"], tmp_path / "s.png",
                            "title", "note")
    finally:
        render.Patch = original
    assert any("no value" in label for label in seen) and (tmp_path / "s.png").stat().st_size > 0
