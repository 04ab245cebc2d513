"""chemprop v2 checkpoints explained by the molecules domain: F in the user's units, completeness,
refusals that say what to do (untrusted pickles, v1, multicomponent, featuriser widths), skipped
molecules that lose nothing, and the benzene known answer."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

chemprop = pytest.importorskip("chemprop", reason="chemprop is an optional extra: pip install -e '.[chemprop]'")
torch = pytest.importorskip("torch")

from chemprop import models, nn  # noqa: E402
from conftest import shared_data_dir  # noqa: E402
from chemprop.data import BatchMolGraph  # noqa: E402
from chemprop.models.utils import save_model  # noqa: E402
from rdkit import Chem  # noqa: E402

import igkit  # noqa: E402
from igkit.cli.main import main  # noqa: E402
from igkit.errors import IGInputError, ModelError  # noqa: E402
from igkit.plugins.molecules.chemprop_compare import train_benzene  # noqa: E402
from igkit.plugins.molecules.chemprop_checkpoint import load_chemprop  # noqa: E402

MOLECULES = ["c1ccccc1CCO", "CC(=O)Nc1ccc(O)cc1", "O=C(O)C[C@H](N)C(=O)O", "C"]


def regression_checkpoint(path: Path, *, d_v: int = 72, seed: int = 0) -> Path:
    """An untrained chemprop regressor whose outputs are unscaled to mean 5, std 3 (as `chemprop train`
    writes them for a scaled target), saved the way `chemprop train` saves model_0/best.pt."""
    torch.manual_seed(seed)
    scaler = nn.UnscaleTransform(mean=[5.0, -1.0], scale=[3.0, 0.5])
    model = models.MPNN(nn.BondMessagePassing(d_v=d_v, d_h=32, depth=3), nn.NormAggregation(),
                        nn.RegressionFFN(n_tasks=2, input_dim=32, hidden_dim=32, output_transform=scaler))
    save_model(path, model.eval(), ["logS", "logP"])
    return path


@pytest.fixture(scope="module")
def regressor(tmp_path_factory) -> Path:
    return regression_checkpoint(tmp_path_factory.mktemp("chemprop") / "best.pt")


def test_f_is_chemprops_own_prediction_in_the_users_units_and_completeness_holds(regressor):
    model = load_chemprop(regressor)
    assert model.tasks == ["logS", "logP"] and model.task_type == "regression"
    mols = [Chem.MolFromSmiles(s) for s in MOLECULES]
    own = model.mpnn(BatchMolGraph([model.featurizer(m) for m in mols])).detach().numpy()
    found = igkit.explain("molecules", MOLECULES, model=model, task="logP")
    assert not found.skipped
    for k, expl in enumerate(found):
        assert expl.score_input == pytest.approx(own[k, 1], rel=1e-5, abs=1e-6)
        total = expl.atom_attributions.sum() + expl.pair_attributions.sum()
        assert total == pytest.approx(expl.score_input - expl.score_baseline, rel=0.01, abs=1e-4)
        assert expl.atom_totals.sum() == pytest.approx(total, rel=1e-5, abs=1e-6)   # bonds split, none lost
        assert len(expl.pair_attributions) == expl.graph.mol.GetNumBonds()
    # the output scaler is part of F: the unscaled network would predict around 0, the user's units around -1
    assert abs(own[:, 1].mean() + 1.0) < abs(own[:, 1].mean())


def test_attribution_is_exact_for_a_model_linear_in_its_inputs(tmp_path):
    """One linear message step, sum aggregation and a linear predictor: F is affine in (V, E), so four
    integration points give F(x) − F(0) exactly."""
    torch.manual_seed(1)
    mp = nn.BondMessagePassing(d_h=8, depth=1, activation=torch.nn.Identity())   # one linear step: F affine
    model = models.MPNN(mp, nn.SumAggregation(), nn.RegressionFFN(input_dim=8, n_layers=0))
    save_model(tmp_path / "linear.pt", model.eval(), ["y"])
    loaded = load_chemprop(tmp_path / "linear.pt")
    expl = igkit.explain("molecules", ["CC(=O)Nc1ccc(O)cc1"], model=loaded, integration={"steps": 4})[0]
    gap = expl.score_input - expl.score_baseline
    assert expl.atom_attributions.sum() + expl.pair_attributions.sum() == pytest.approx(gap, rel=1e-4)


def test_cli_explains_a_chemprop_checkpoint_by_task_name_and_writes_the_usual_files(regressor, tmp_path):
    out = tmp_path / "run"
    code = main(["molecules", "explain", "CCO", "c1ccccc1O", "C1CC", "--model", str(regressor), "--target", "logS",
                 "--out", str(out), "--threads", "1", "--quiet", "--no-pictures"])
    assert code == 1                                        # one molecule skipped, the others written
    report = json.loads((out / "report.json").read_text())
    assert [i["status"] for i in report["items"]] == ["written", "written", "skipped"]
    assert "SMILES" in report["items"][2]["reason"]
    folder = out / report["items"][1]["folder"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["target"].startswith("logS")
    with (folder / "atoms.csv").open() as fh:
        atoms = list(csv.DictReader(fh))
    with (folder / "pairs.csv").open() as fh:
        bonds = list(csv.DictReader(fh))
    assert len(atoms) == 7 and len(bonds) == 7                # phenol: 7 heavy atoms, 7 bonds
    own = sum(float(a["attribution"]) for a in atoms) + sum(float(b["attribution"]) for b in bonds)
    folded = sum(float(a["attribution_with_pairs"]) for a in atoms)
    assert folded == pytest.approx(own, rel=1e-4, abs=1e-6)
    assert abs(summary["completeness_error"]) <= 0.01


def test_a_molecule_the_featuriser_rejects_is_skipped_with_the_reason_and_the_rest_are_explained(regressor):
    model = load_chemprop(regressor)
    featurizer = model.featurizer

    def picky(mol):
        if mol.GetNumAtoms() > 8:
            raise ValueError("too many atoms for this test featuriser")
        return featurizer(mol)

    model.featurizer = picky
    found = igkit.explain("molecules", ["CCO", "CC(=O)Nc1ccc(O)cc1", "c1ccccc1"], model=model)
    assert [e.smiles for e in found] == ["CCO", "c1ccccc1"]
    assert "chemprop's featuriser rejected the molecule" in found.skipped[0].reason
    assert found.skipped[0].kind == "input"


def write_malicious_checkpoint(path: Path, marker: Path) -> Path:
    """A file chemprop's loader would unpickle, whose unpickling creates ``marker``."""
    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"hyper_parameters": Payload(), "state_dict": {}}, path)
    return path


def test_a_checkpoint_that_runs_code_is_refused_and_nothing_runs_without_trust(tmp_path):
    marker = tmp_path / "pwned.txt"
    bad = write_malicious_checkpoint(tmp_path / "model.pt", marker)
    with pytest.raises(ModelError, match="--trust-checkpoint"):
        load_chemprop(bad)
    assert main(["molecules", "explain", "CCO", "--model", str(bad), "--out", str(tmp_path / "out"),
                 "--threads", "1", "--quiet"]) == 2
    assert not marker.exists()
    assert not (tmp_path / "out" / "report.json").exists()
    with pytest.raises(ModelError):                 # trusted, it is unpickled (and is no model)
        load_chemprop(bad, trust_checkpoint=True)
    assert marker.exists()                          # so the file above really was malicious


def test_a_chemprop_v1_checkpoint_is_refused_with_the_conversion_command(tmp_path):
    path = tmp_path / "v1.pt"
    torch.save({"args": {"hidden_size": 300, "depth": 3}, "state_dict": {"encoder.encoder.0.W_i.weight":
                                                                          torch.zeros(2, 2)},
                "data_scaler": None, "features_scaler": None}, path)
    with pytest.raises(ModelError, match="v1.*chemprop convert --conversion v1_to_v2"):
        load_chemprop(path)


def test_multicomponent_and_mismatched_featuriser_models_are_refused_clearly(tmp_path):
    blocks = nn.MulticomponentMessagePassing(blocks=[nn.BondMessagePassing(d_h=8)], n_components=2, shared=True)
    multi = models.MulticomponentMPNN(blocks, nn.MeanAggregation(), nn.RegressionFFN(input_dim=blocks.output_dim))
    save_model(tmp_path / "multi.pt", multi, ["y"])
    with pytest.raises(ModelError, match="multicomponent"):
        load_chemprop(tmp_path / "multi.pt")
    regression_checkpoint(tmp_path / "odd.pt", d_v=50)
    with pytest.raises(ModelError, match="expects 50 atom and 14 bond features"):
        load_chemprop(tmp_path / "odd.pt")


def test_wrong_target_and_carbon_baseline_stop_before_any_work(regressor, tmp_path):
    for extra, words in ((["--target", "pKa"], "no task 'pKa'"), (["--target", "5"], "out of range"),
                         (["--baseline", "carbon"], "weave")):
        assert main(["molecules", "explain", "CCO", "--model", str(regressor), *extra, "--out",
                     str(tmp_path / "o"), "--quiet"]) == 2
    with pytest.raises(IGInputError, match="weave"):
        igkit.explain("molecules", ["CCO"], model_source=str(regressor), baseline="carbon")


# --- the known answer: a chemprop model trained on the shipped benzene data ---------------------------------

@pytest.fixture(scope="module")
def benzene_model(tmp_path_factory) -> Path:
    data = shared_data_dir() / "benzene" / "benzene.csv"
    if not data.is_file():
        pytest.skip(f"shared data not found at {data} (set IGKIT_SHARED_DATA to run this test)")
    return train_benzene(data, tmp_path_factory.mktemp("benzene") / "best.pt")


def test_benzene_chemprop_model_points_at_the_ring(benzene_model, shared_data, tmp_path):
    out = tmp_path / "evaluation"
    assert main(["molecules", "evaluate", "--task", "benzene", "--model", str(benzene_model), "--data",
                 str(shared_data / "benzene" / "benzene.csv"), "--split-col", "split", "--limit", "60",
                 "--out", str(out), "--threads", "1", "--quiet"]) == 0
    summary = json.loads((out / "evaluation.json").read_text())
    assert summary["model_quality_on_task_labels"]["roc_auc"] > 0.9
    assert summary["integrated_gradients"]["mean"] >= 0.95
    assert summary["worst_completeness_error"] <= 0.01


def test_the_lightning_checkpoint_gives_the_same_predictions(benzene_model):
    from_pt = load_chemprop(benzene_model)
    from_ckpt = load_chemprop(benzene_model.with_suffix(".ckpt"))
    assert from_ckpt.tasks == ["task_0"]                      # lightning checkpoints carry no column names
    a = igkit.explain("molecules", MOLECULES[:2], model=from_pt, integration={"steps": 8})
    b = igkit.explain("molecules", MOLECULES[:2], model=from_ckpt, integration={"steps": 8})
    assert np.allclose([e.score_input for e in a], [e.score_input for e in b], atol=1e-5)
    assert np.allclose(a[0].atom_totals, b[0].atom_totals, atol=1e-5)


def test_score_methods_runs_on_a_chemprop_model(benzene_model, shared_data, tmp_path):
    out = tmp_path / "scores"
    assert main(["molecules", "score-methods", "--task", "benzene", "--model", str(benzene_model), "--data",
                 str(shared_data / "benzene" / "benzene.csv"), "--split-col", "split", "--limit", "8",
                 "--methods", "saliency,occlusion", "--out", str(out), "--threads", "1", "--quiet"]) == 0
    scores = json.loads((out / "scores.json").read_text())
    rows = {r["method"]: r for r in scores["table"]}
    assert set(rows) == {"integrated_gradients", "saliency", "occlusion"}
    assert rows["integrated_gradients"]["atom_auroc_with_pairs"] >= 0.9
    assert main(["molecules", "score-methods", "--task", "benzene", "--model", str(benzene_model),
                 "--methods", "grad_cam", "--out", str(tmp_path / "x"), "--quiet"]) == 2


def test_the_apps_molecule_tab_explains_a_chemprop_checkpoint(regressor):
    """`igkit app --model molecules=best.pt`: the tab loads the checkpoint through the same domain."""
    from igkit.app.service import DomainService
    from igkit.plugins.molecules.domain import MoleculesDomain

    service = DomainService(MoleculesDomain(), [str(regressor)])
    result = service.run(text="c1ccccc1O", model=service.choices[0].label)
    assert result.ok, result.error
    with (Path(result.folder) / "atoms.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 7


def test_parquet_output_of_a_chemprop_run(regressor, tmp_path):
    pytest.importorskip("pyarrow", reason="--format parquet needs pyarrow (extra parquet or ray)")
    out = tmp_path / "run"
    assert main(["molecules", "explain", "CCO", "c1ccccc1O", "--model", str(regressor), "--format", "parquet",
                 "--out", str(out), "--threads", "1", "--quiet", "--no-pictures"]) == 0
    import pyarrow.dataset as ds

    units = ds.dataset(out / "units").to_table().to_pylist()
    assert len(units) >= 3 + 7                              # at least one row per atom of both molecules


def test_the_weights_only_reader_is_never_handed_a_function(tmp_path):
    """Even a function inside chemprop.nn could be called by the reader: such a file is refused."""
    from chemprop.nn.utils import get_activation_function

    class Calls:
        def __reduce__(self):
            return (get_activation_function, ("relu",))

    torch.save({"hyper_parameters": {"agg": Calls()}, "state_dict": {}}, tmp_path / "calls.pt")
    with pytest.raises(ModelError, match="names the function chemprop.nn.utils.get_activation_function"):
        load_chemprop(tmp_path / "calls.pt")


def test_the_ray_engine_writes_the_same_chemprop_attributions_as_a_local_run(regressor, tmp_path):
    pytest.importorskip("ray", reason="--engine ray needs the ray extra: pip install -e '.[ray]'")
    runs = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        extra = ["--workers", "1"] if engine == "ray" else []
        assert main(["molecules", "explain", "CCO", "c1ccccc1O", "not a smiles", "--model", str(regressor),
                     "--engine", engine, *extra, "--steps", "16", "--out", str(out), "--threads", "1", "--quiet",
                     "--no-pictures"]) == 1
        report = json.loads((out / "report.json").read_text())
        assert [i["status"] for i in report["items"]] == ["written", "written", "skipped"]
        with (out / "atoms.csv").open() as fh:
            runs[engine] = sorted((r["folder"], r["atom"], float(r["attribution_with_pairs"]))
                                  for r in csv.DictReader(fh))
    assert [r[:2] for r in runs["ray"]] == [r[:2] for r in runs["local"]]
    assert np.allclose([r[2] for r in runs["ray"]], [r[2] for r in runs["local"]], atol=1e-6)


def test_a_classifier_is_explained_as_probability_or_logit(tmp_path):
    torch.manual_seed(2)
    model = models.MPNN(nn.BondMessagePassing(d_h=16), nn.MeanAggregation(), nn.BinaryClassificationFFN(input_dim=16))
    save_model(tmp_path / "clf.pt", model.eval(), ["active"])
    loaded = load_chemprop(tmp_path / "clf.pt")
    assert loaded.task_type == "classification"
    probability = igkit.explain("molecules", ["c1ccccc1O"], model=loaded, score="probability")[0]
    logit = igkit.explain("molecules", ["c1ccccc1O"], model=loaded, score="logit")[0]
    assert probability.score_input == pytest.approx(1 / (1 + np.exp(-logit.score_input)), abs=1e-6)
    for expl in (probability, logit):
        gap = expl.score_input - expl.score_baseline
        assert expl.atom_totals.sum() == pytest.approx(gap, rel=0.01, abs=1e-6)


def test_the_folder_chemprop_train_wrote_names_its_one_model(regressor, tmp_path):
    run = tmp_path / "chemprop_run"
    (run / "model_0").mkdir(parents=True)
    (run / "model_0" / "best.pt").write_bytes(regressor.read_bytes())
    assert load_chemprop(run).tasks == ["logS", "logP"]
    assert main(["molecules", "explain", "CCO", "--model", str(run), "--out", str(tmp_path / "o"), "--quiet",
                 "--no-pictures", "--steps", "8"]) == 0
    (run / "model_1").mkdir()
    (run / "model_1" / "best.pt").write_bytes(regressor.read_bytes())
    with pytest.raises(IGInputError, match="holds 2 chemprop models"):
        load_chemprop(run)
