"""PTB tokenisation, the data loader and its errors, batching for truncated BPTT, training schedule."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from igkit.errors import IGInputError
from igkit.plugins.text.data import batchify, bptt_chunks, load_ptb, num_chunks
from igkit.plugins.text.model import CONFIGS
from igkit.plugins.text.train import learning_rate, train_language_model
from igkit.plugins.text.vocab import Vocabulary, tokenize

SENTENCES = ["the market fell N points", "mr. smith does n't sell shares", "the shares rose"]


@pytest.fixture
def ptb_dir(tmp_path):
    for split in ("train", "valid", "test"):
        (tmp_path / f"ptb.{split}.txt").write_text("".join(f" {s} \n" for s in SENTENCES * 30))
    return tmp_path


@pytest.mark.parametrize("text, tokens", [
    ("The company's shares fell 5% to $3.50, Mr. Smith said.",
     ["the", "company", "'s", "shares", "fell", "N", "to", "$", "N", "mr.", "smith", "said"]),
    ("He doesn't know 1,000 N years", ["he", "does", "n't", "know", "N", "N", "years"]),
    ('"Quoted" (U.S.) end.', ["quoted", "u.s.", "end"]),
])
def test_tokenize_like_penn_treebank(text, tokens):
    vocab = Vocabulary(["<unk>", "<eos>", "mr.", "u.s."])
    assert tokenize(text, vocab) == tokens


def test_vocabulary_order_is_frequency_then_alphabet():
    vocab = Vocabulary.from_tokens("b a c b <eos> c b".split())
    assert vocab.words == ["b", "c", "<eos>", "a", "<unk>"]
    assert vocab.encode(["c", "zzz"]) == [1, 4]


def test_target_not_in_vocabulary_names_the_closest_words():
    vocab = Vocabulary(["<unk>", "<eos>", "shares", "share", "sharp", "N"])
    assert vocab.id_of("Shares") == 2 and vocab.id_of("42") == 5
    with pytest.raises(IGInputError, match="closest vocabulary words: shares, share"):
        vocab.id_of("sharess")


def test_loader_reads_splits_with_eos(ptb_dir):
    corpus = load_ptb(ptb_dir)
    assert corpus.train.numel() == 30 * sum(len(s.split()) + 1 for s in SENTENCES)
    assert corpus.vocab.words[corpus.train[5]] == "<eos>"


def test_missing_files_are_named(ptb_dir):
    (ptb_dir / "ptb.valid.txt").unlink()
    with pytest.raises(IGInputError, match="lacks ptb.valid.txt; expected ptb.train.txt, ptb.valid.txt"):
        load_ptb(ptb_dir)
    with pytest.raises(IGInputError, match="does not exist"):
        load_ptb(ptb_dir / "nowhere")


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"), (b"\xff\xfe binary", "not UTF-8"), (b"brand new words\n", "not in ptb.train.txt")])
def test_malformed_files_are_explained(ptb_dir, content, message):
    (ptb_dir / "ptb.test.txt").write_bytes(content)
    with pytest.raises(IGInputError, match=message):
        load_ptb(ptb_dir)


def test_bptt_chunks_pair_each_word_with_the_next():
    rows = batchify(torch.arange(43), 4)            # 10 columns, 3 tokens dropped
    assert rows.shape == (4, 10) and rows[1, 0] == 10
    chunks = list(bptt_chunks(rows, 4))
    assert len(chunks) == num_chunks(rows, 4) == 3
    inputs = torch.cat([x for x, _ in chunks], 1)
    targets = torch.cat([y for _, y in chunks], 1)
    assert torch.equal(targets, inputs + 1) and inputs.shape == (4, 9)


def test_zaremba_learning_rate_schedules():
    from igkit.plugins.text.cli import CONFIG_NAMES

    assert sorted(CONFIG_NAMES) == sorted(CONFIGS)   # the parser lists them without importing the model
    small, medium = CONFIGS["small"], CONFIGS["medium"]
    assert [learning_rate(small, e) for e in (1, 4, 5, 6, 13)] == [1, 1, 0.5, 0.25, 0.5 ** 9]
    assert learning_rate(medium, 6) == 1 and learning_rate(medium, 8) == pytest.approx(1 / 1.2 ** 2)
    assert (small.hidden, small.layers, small.num_steps, small.batch_size, small.epochs) == (200, 2, 20, 20, 13)
    assert (medium.hidden, medium.dropout, medium.epochs) == (650, 0.5, 39)


def test_training_is_deterministic_and_learns(ptb_dir):
    corpus = load_ptb(ptb_dir)
    config = dataclasses.replace(CONFIGS["small"], vocab_size=len(corpus.vocab), hidden=16, num_steps=5,
                                 batch_size=4, epochs=2, decay_after=1)
    runs = [train_language_model(corpus, config, seed=3, show_progress=False, log=lambda _: None)
            for _ in range(2)]
    (model_a, record_a), (model_b, record_b) = runs
    assert record_a.epochs == record_b.epochs
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(a, b)
    assert record_a.epochs[-1]["valid_perplexity"] < record_a.epochs[0]["valid_perplexity"] < len(corpus.vocab)


@pytest.mark.shared_data
def test_real_penn_treebank(shared_data):
    corpus = load_ptb(shared_data / "ptb")
    assert len(corpus.vocab) == 10000
    assert (corpus.train.numel(), corpus.valid.numel(), corpus.test.numel()) == (929589, 73760, 82430)
    assert corpus.vocab.words[:4] == ["the", "<unk>", "<eos>", "N"]


def test_train_evaluate_saturation_commands(ptb_dir, tmp_path, capsys):
    from igkit.cli.main import main

    model = tmp_path / "model"
    assert main(["text", "train", "--data-dir", str(ptb_dir), "--out", str(model), "--epochs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "epoch  2  lr 1  train perplexity" in printed and "test perplexity" in printed
    recorded = json.loads(model.with_suffix(".json").read_text())["training"]
    assert [e["epoch"] for e in recorded["epochs"]] == [1, 2] and recorded["seed"] == 0
    assert recorded["threads"] == 1 and torch.get_num_threads() == 1   # train's default, for determinism
    assert main(["text", "evaluate", "--data-dir", str(ptb_dir), "--model", str(model)]) == 0
    shipped_test = float(capsys.readouterr().out.split("test perplexity")[1])
    assert shipped_test == pytest.approx(recorded["test_perplexity"], rel=0.01)   # half precision costs ~nothing
    out = tmp_path / "saturation"
    assert main(["text", "saturation", "--data-dir", str(ptb_dir), "--model", str(model), "--windows", "3",
                 "--words", "4", "--alphas", "5", "--out", str(out)]) == 0
    assert len(json.loads((out / "saturation.json").read_text())["probability"]) == 3
    (ptb_dir / "ptb.train.txt").write_text(" other words here \n" + (ptb_dir / "ptb.train.txt").read_text())
    assert main(["text", "evaluate", "--data-dir", str(ptb_dir), "--model", str(model)]) == 2
    assert "differs from the vocabulary" in capsys.readouterr().err
