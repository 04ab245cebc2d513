"""Training refuses poison (issue 22): non-finite labels are skipped with the file's line number
while the other rows train, a task without labels stops the command, and a loss that turns NaN
or infinite stops training before a model is written (molecules and text). Network sizes and
training settings out of range are refused before anything is allocated."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from igkit.cli.main import main
from igkit.errors import IGInputError, NonFiniteError
from igkit.plugins.molecules import train as molecule_training
from igkit.plugins.molecules.featurize import Featurization
from igkit.plugins.molecules.train import load_labelled_csv
from igkit.plugins.text.data import Corpus
from igkit.plugins.text.model import LMConfig
from igkit.plugins.text.train import train_language_model
from igkit.plugins.text.vocab import Vocabulary

SMILES = ["CCO", "c1ccccc1", "CCN", "c1ccccc1O", "CCCl", "c1ccncc1", "CC(=O)O", "c1ccccc1C", "CCCC",
          "c1ccc(N)cc1", "OCCO", "c1ccccc1Cl"]
FEATURES = Featurization("simple", 2)


def labelled_csv(path: Path, labels: dict[int, str] | None = None) -> Path:
    """``mol_id,smiles,label``: benzene-ring labels, with some rows' label text replaced."""
    labels = labels or {}
    lines = ["mol_id,smiles,label"]
    for k, smiles in enumerate(SMILES):
        lines.append(f"m{k},{smiles},{labels.get(k, str(int('c1' in smiles)))}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_non_finite_labels_are_refused_with_their_lines_and_the_others_kept(tmp_path):
    path = labelled_csv(tmp_path / "mols.csv", {1: "inf", 3: "nan", 5: "1e999", 6: "-Infinity", 7: ""})
    data = load_labelled_csv(path, FEATURES, id_col="mol_id")
    refused = {p.source: p.reason for p in data.problems}
    assert set(refused) == {f"{path} line {k + 2}" for k in (1, 3, 5, 6)}
    assert all("not a finite number" in reason for reason in refused.values())
    kept = sorted(i for split in data.splits.values() for i in split.ids)
    assert kept == sorted(f"m{k}" for k in range(len(SMILES)) if k not in (1, 3, 5, 6))
    labels = np.concatenate([s.labels for s in data.splits.values()])
    assert np.isnan(labels).sum() == 1  # the empty cell: a missing label, left out of the loss
    assert data.task_type == "classification"  # poison no longer switches the metric


def test_a_task_without_any_label_stops_the_command(tmp_path, capsys):
    path = labelled_csv(tmp_path / "mols.csv", {k: "" for k in range(len(SMILES))})
    with pytest.raises(IGInputError, match="no training row has a label in column 'label'"):
        load_labelled_csv(path, FEATURES)
    code = main(["molecules", "train", "--data", str(path), "--out", str(tmp_path / "m"), "--epochs", "1"])
    assert code == 2 and capsys.readouterr().err.startswith("igkit: error:")
    assert not list(tmp_path.glob("m.*"))


def test_a_diverging_molecule_training_writes_no_model(tmp_path, capsys, monkeypatch):
    path = labelled_csv(tmp_path / "mols.csv")
    monkeypatch.setattr(molecule_training, "_loss", lambda model, out, y: out.sum() * math.nan)
    code = main(["molecules", "train", "--data", str(path), "--out", str(tmp_path / "m"), "--epochs", "2",
                 "--atom-hidden", "8", "--pair-hidden", "8", "--readout-hidden", "8", "--dense-hidden", "8"])
    err = capsys.readouterr().err
    assert code == 2 and "training diverged" in err and "no model was written" in err, err
    assert not list(tmp_path.glob("m.*"))


@pytest.mark.parametrize("option, value", [("--atom-hidden", "1000000"), ("--dense-layers", "1000")])
def test_network_sizes_out_of_range_are_refused_before_training(tmp_path, capsys, option, value):
    path = labelled_csv(tmp_path / "mols.csv")
    code = main(["molecules", "train", "--data", str(path), "--out", str(tmp_path / "m"), option, value])
    err = capsys.readouterr().err
    assert code == 2 and "igkit: error:" in err and "out of range" in err and "Traceback" not in err, err
    assert not list(tmp_path.glob("m.*"))


def tiny_corpus() -> Corpus:
    vocab = Vocabulary.from_tokens("the stock market fell <eos> the stock rose <eos>".split())
    ids = torch.tensor(vocab.encode(("the stock market fell <eos> the stock rose <eos> " * 30).split()))
    return Corpus(vocab, ids, ids[:120], ids[:120])


def test_a_diverging_text_training_stops_with_the_epoch_and_steps(monkeypatch):
    config = LMConfig(vocab_size=6, hidden=4, layers=1, num_steps=5, batch_size=4, epochs=2)
    real = torch.nn.functional.cross_entropy
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", lambda *a, **k: real(*a, **k) * math.inf)
    with pytest.raises(NonFiniteError, match=r"training diverged: the loss became inf in epoch 1/2, at steps 0–4"):
        train_language_model(tiny_corpus(), config, show_progress=False, log=lambda _: None)


def test_non_finite_text_training_settings_are_refused():
    config = LMConfig(vocab_size=6, hidden=4, layers=1, lr=math.nan)
    with pytest.raises(IGInputError, match="training setting lr = nan is out of range: it must be a finite number"):
        train_language_model(tiny_corpus(), config, show_progress=False, log=lambda _: None)
    model, record = train_language_model(tiny_corpus(), LMConfig(vocab_size=6, hidden=4, layers=1, num_steps=5,
                                                                 batch_size=4, epochs=1),
                                         show_progress=False, log=lambda _: None)
    assert math.isfinite(record.test_perplexity)
