"""PyTorch Geometric models explained by the molecules domain: exact answers on a linear model, the
model's own output, completeness with edge features and with an edge mask, the CLI route
(module:factory + state dict), known-answer commands, and the refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest

pyg = pytest.importorskip("torch_geometric", reason="PyTorch Geometric is an optional extra: "
                                                    "pip install -e '.[pyg]'")
import torch  # noqa: E402
from torch_geometric.data import Batch  # noqa: E402
from torch_geometric.nn import GCNConv, global_add_pool  # noqa: E402
from torch_geometric.utils import from_rdmol, from_smiles  # noqa: E402

import igkit  # noqa: E402
from igkit.cli.main import main  # noqa: E402
from igkit.errors import IGInputError  # noqa: E402
from igkit.plugins.molecules.pyg_model import PygModel  # noqa: E402

MOLECULES = ["c1ccccc1CCO", "CC(=O)Nc1ccc(O)cc1", "C", "OC(=O)C=CC(=O)O"]

NETS = '''
import torch
from torch_geometric.nn import GINEConv, global_add_pool


class EdgeNet(torch.nn.Module):
    """GINE convolutions over PyG's from_smiles features (9 per atom, 3 per bond), summed per graph."""

    def __init__(self, hidden=16):
        super().__init__()
        self.lin = torch.nn.Linear(9, hidden)
        self.conv1 = GINEConv(torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.Tanh()), edge_dim=3)
        self.conv2 = GINEConv(torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.Tanh()), edge_dim=3)
        self.out = torch.nn.Linear(hidden, 2)

    def forward(self, x, edge_index, edge_attr, batch):
        h = self.lin(x).tanh()
        h = self.conv2(self.conv1(h, edge_index, edge_attr), edge_index, edge_attr)
        return self.out(global_add_pool(h, batch)) / 10


def edge_net():
    torch.manual_seed(0)
    return EdgeNet()
'''


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pyg")
    (folder / "nets.py").write_text(NETS)
    namespace: dict = {}
    exec(compile(NETS, str(folder / "nets.py"), "exec"), namespace)
    torch.save(namespace["edge_net"]().state_dict(), folder / "edge.pt")
    return folder, namespace


class NodeNet(torch.nn.Module):
    """GCN without edge features: explained over node features and an edge mask."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.out = GCNConv(9, 16), GCNConv(16, 16), torch.nn.Linear(16, 1)

    def forward(self, x, edge_index, edge_attr, batch):
        h = self.conv2(self.conv1(x, edge_index).tanh(), edge_index).tanh()
        return self.out(global_add_pool(h, batch)) / 10


class Linear(torch.nn.Module):
    """F = Σ_atoms w·x + Σ_edges v·edge_attr per graph: IG is exactly w·x per atom, 2·v·e per bond."""

    def __init__(self):
        super().__init__()
        self.w, self.v = torch.randn(9), torch.randn(3)

    def forward(self, x, edge_index, edge_attr, batch):
        per_edge = torch.zeros(x.shape[0]).index_add(0, edge_index[0], edge_attr @ self.v)
        return global_add_pool((x @ self.w + per_edge)[:, None], batch)[:, 0]


def pyg_batch(smiles: list[str]):
    graphs = [from_smiles(s) for s in smiles]
    batch = Batch.from_data_list(graphs)
    return batch.x.float(), batch.edge_index, batch.edge_attr.float(), batch.batch


def test_exact_attributions_on_a_linear_model():
    model = PygModel(Linear())
    for expl in igkit.explain("molecules", MOLECULES, model=model, integration={"steps": 2}):
        data = from_smiles(expl.smiles)
        assert np.allclose(expl.atom_attributions, (data.x.float() @ model.module.w).numpy(), atol=1e-5)
        v = model.module.v.numpy()
        mol = expl.graph.mol
        expected = [2 * float(data.edge_attr[(data.edge_index[0] == b.GetBeginAtomIdx())
                                             & (data.edge_index[1] == b.GetEndAtomIdx())][0].float().numpy() @ v)
                    for b in mol.GetBonds()]
        assert np.allclose(expl.pair_attributions, expected, atol=1e-5)


def test_f_is_the_models_own_output_and_completeness_holds_with_edge_features(nets):
    module = nets[1]["edge_net"]().eval()
    model = PygModel(module, tasks=["a", "b"])
    own = module(*pyg_batch(MOLECULES)).detach().numpy()
    found = igkit.explain("molecules", MOLECULES, model=model, task="b")
    assert not found.skipped
    for k, expl in enumerate(found):
        assert expl.score_input == pytest.approx(own[k, 1], abs=1e-5)
        parts = expl.atom_attributions.sum() + expl.pair_attributions.sum()
        assert abs(parts - (expl.score_input - expl.score_baseline)) <= max(
            0.01 * abs(expl.score_input - expl.score_baseline), 1e-5)
        assert expl.atom_totals.sum() == pytest.approx(parts, abs=1e-6)


def test_a_model_without_edge_features_is_explained_over_an_edge_mask():
    torch.manual_seed(0)
    module = NodeNet().eval()
    model = PygModel(module, edge_features=False, task_type="classification")
    own = module(*pyg_batch(MOLECULES)).detach()[:, 0]
    found = igkit.explain("molecules", MOLECULES, model=model, score="probability")
    for k, expl in enumerate(found):
        assert expl.score_input == pytest.approx(float(own[k].sigmoid()), abs=1e-5)   # mask of ones = no mask
        gap = expl.score_input - expl.score_baseline
        assert abs(expl.atom_attributions.sum() + expl.pair_attributions.sum() - gap) <= max(0.01 * abs(gap), 1e-5)
        assert expl.pair_features.shape[1] == 1                                      # one mask entry per bond
    assert np.abs(found[0].pair_attributions).sum() > 0        # messages along bonds matter, and are seen


def test_outputs_that_are_not_one_score_per_graph_are_refused_at_once():
    class PerAtom(torch.nn.Module):
        def forward(self, x, edge_index, edge_attr, batch):
            return x.sum(1)

    with pytest.raises(IGInputError, match="not one score per graph"):
        PygModel(PerAtom())


def test_featurisers_whose_edges_are_not_bonds_are_refused_and_molecules_skipped_with_the_reason():
    def self_loops(mol):
        n = mol.GetNumAtoms()
        return torch.ones(n, 9), torch.stack([torch.arange(n), torch.arange(n)]), torch.ones(n, 3)

    def directed_features(mol):
        data = from_rdmol(mol)
        attr = data.edge_attr.float()
        attr[:, 0] = torch.arange(attr.shape[0]).float()       # u→v and v→u differ
        return data.x.float(), data.edge_index, attr

    with pytest.raises(IGInputError, match="not the molecule's bonds"):
        PygModel(Linear(), featurizer=self_loops)              # refused by the probe, before any molecule
    model = PygModel(Linear())
    model.featurizer = directed_features                        # methane has no bond to differ
    found = igkit.explain("molecules", ["C", "CCO"], model=model)
    assert [e.smiles for e in found] == ["C"]
    assert "two directions of bond" in found.skipped[0].reason and found.skipped[0].kind == "input"


def test_cli_route_module_factory_with_a_state_dict(nets, tmp_path):
    folder, _ = nets
    spec = f"{folder / 'nets.py'}:edge_net"
    out = tmp_path / "run"
    assert main(["molecules", "explain", "c1ccccc1CCO", "not a smiles", "--model", spec, "--weights",
                 str(folder / "edge.pt"), "--target", "1", "--out", str(out), "--threads", "1", "--quiet",
                 "--no-pictures"]) == 1
    report = json.loads((out / "report.json").read_text())
    assert [i["status"] for i in report["items"]] == ["written", "skipped"]
    summary = json.loads((out / report["items"][0]["folder"] / "summary.json").read_text())
    assert summary["completeness_error"] <= 0.01 and summary["target"].startswith("task_1")
    torch.save({"lin.weight": torch.zeros(3, 3)}, tmp_path / "wrong.pt")
    assert main(["molecules", "explain", "CCO", "--model", spec, "--weights", str(tmp_path / "wrong.pt"),
                 "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert main(["molecules", "explain", "CCO", "--model", f"{folder / 'nets.py'}:nothing", "--weights",
                 str(folder / "edge.pt"), "--out", str(tmp_path / "y"), "--quiet"]) == 2


def test_evaluate_and_score_methods_run_on_a_pyg_model(nets, tmp_path):
    folder, _ = nets
    model = ["--model", f"{folder / 'nets.py'}:edge_net", "--weights", str(folder / "edge.pt")]
    assert main(["molecules", "evaluate", "--task", "benzene", *model, "--limit", "30",
                 "--out", str(tmp_path / "evaluation"), "--threads", "1", "--quiet"]) == 0
    evaluation = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    assert evaluation["scored"] > 0 and evaluation["worst_completeness_error"] <= 0.01
    assert 0 <= evaluation["integrated_gradients"]["mean"] <= 1
    assert main(["molecules", "score-methods", "--task", "benzene", *model, "--limit", "4",
                 "--methods", "saliency,occlusion", "--examples", "0", "--out", str(tmp_path / "scores"),
                 "--threads", "1", "--quiet"]) == 0
    scores = json.loads((tmp_path / "scores" / "scores.json").read_text())
    assert [r["method"] for r in scores["table"]] == ["integrated_gradients", "saliency", "occlusion"]


def test_model_kind_options_that_contradict_each_other_stop_before_any_work(nets, tmp_path, capsys):
    folder, _ = nets
    out = str(tmp_path / "o")
    assert main(["molecules", "explain", "CCO", "--model-kind", "pyg", "--model", "nets:edge_net", "--out", out,
                 "--quiet"]) == 2
    assert "needs --weights FILE" in capsys.readouterr().err
    assert main(["molecules", "explain", "CCO", "--model", "best.pt", "--weights", str(folder / "edge.pt"),
                 "--model-kind", "chemprop", "--out", out, "--quiet"]) == 2
    assert "--weights is for PyTorch Geometric models" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_call_adapter_explains_a_model_that_takes_a_data_object():
    from torch_geometric.data import Data

    class TakesData(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Linear()

        def forward(self, data):
            return self.inner(data.x, data.edge_index, data.edge_attr, data.batch)

    module = TakesData()
    model = PygModel(module, call=lambda m, x, edge_index, edge_attr, batch: m(
        Data(x=x, edge_index=edge_index, edge_attr=edge_attr, batch=batch)))
    direct = igkit.explain("molecules", ["CC(=O)O"], model=PygModel(module.inner), integration={"steps": 2})[0]
    adapted = igkit.explain("molecules", ["CC(=O)O"], model=model, integration={"steps": 2})[0]
    assert np.allclose(adapted.atom_attributions, direct.atom_attributions, atol=1e-6)
    assert np.allclose(adapted.pair_attributions, direct.pair_attributions, atol=1e-6)
