"""Two-fragment AND rules: the default attribution finds both fragments of a tiny task it learned."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from igkit.attribution.evaluation import attribution_auc
from igkit.plugins.molecules.checkpoint import new_model, predict
from igkit.plugins.molecules.featurize import featurize
from igkit.plugins.molecules.readers import parse_smiles
from igkit.plugins.molecules.multifragment import default_atom_scores, fragment_deletion
from igkit.plugins.molecules.tasks import fragments, make_task
from igkit.plugins.molecules.train import Split, fit

#: pieces that chain into valid SMILES; decoys share elements or bonds with the fragments
FILLERS = ["C", "CC", "N", "O", "c1ccccc1", "C1CCCC1", "S", "C(C)", "C(Cl)", "C(O)", "C(=C)", "C(N)", "CC(C)"]
FRAGMENTS = ("C(F)", "C(=O)")


def tiny_task(n_per_kind: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """Molecules with both fragments, each one alone, or neither (half positive)."""
    smiles, labels = [], []
    for has_f, has_c, count in ((1, 1, 3 * n_per_kind), (1, 0, n_per_kind), (0, 1, n_per_kind),
                                (0, 0, n_per_kind)):
        for _ in range(count):
            units = list(rng.choice(FILLERS, rng.integers(3, 7)))
            for frag, on in zip(FRAGMENTS, (has_f, has_c)):
                if on:
                    units.insert(int(rng.integers(0, len(units) + 1)), frag)
            smiles.append("".join(units))
            labels.append(float(has_f and has_c))
    return smiles, np.asarray(labels, dtype=np.float32)[:, None]


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    task = make_task("fluoride AND carbonyl")
    rng = np.random.default_rng(0)
    smiles, labels = tiny_task(90, rng)
    mols = [parse_smiles(s) for s in smiles]
    assert [task.label(m) for m in mols] == labels[:, 0].tolist()
    torch.manual_seed(0)
    model = new_model("simple", "w2n2", atom_hidden=16, pair_hidden=16, readout_hidden=16, dense_hidden=32)
    graphs = [featurize(m, model.featurization) for m in mols]
    order = rng.permutation(len(graphs))
    train, valid, test = order[:380], order[380:430], order[430:]
    split = lambda idx: Split([str(i) for i in idx], [graphs[i] for i in idx], labels[idx])  # noqa: E731
    fit(model, split(train), split(valid), epochs=40, patience=8, lr=3e-3, show_progress=False)
    positives = [i for i in test if labels[i, 0] > 0.5]
    return model, task, [graphs[i] for i in positives], [mols[i] for i in positives]


def test_the_tiny_model_learns_the_and_rule(trained):
    model, task, graphs, mols = trained
    assert (predict(model, graphs)[:, 0] > 0.5).float().mean() > 0.8
    assert fragment_deletion(model, task, graphs)["still_positive_after_deleting_one_fragment"] < 0.3


def test_default_attribution_finds_both_fragments(trained):
    model, task, graphs, mols = trained
    scores = default_atom_scores(model, graphs)
    aucs = [attribution_auc(s, task.truth(m)) for s, m in zip(scores, mols)]
    assert np.nanmean(aucs) >= 0.85
    fluoride, carbonyl = fragments(task.rule)
    both = 0
    for s, m in zip(scores, mols):
        others = np.setdiff1d(np.arange(m.GetNumAtoms()), sorted(task.rule.atoms(m)))
        rest = s[others].mean() if len(others) else 0.0
        both += s[sorted(fluoride.atoms(m))].mean() > rest and s[sorted(carbonyl.atoms(m))].mean() > rest
    assert both / len(mols) >= 0.8          # each fragment on its own scores above the other atoms
