"""Checkpoints that reject a foreign vocabulary/config, and the ``igkit text`` commands end to end."""
from __future__ import annotations

import json

import pytest
import torch

from igkit.cli import main
from igkit.errors import IGInputError
from igkit.plugins.text.checkpoint import (LanguageModel, check_same_vocabulary, load_language_model,
                                           model_paths, save_language_model)
from igkit.plugins.text.model import LMConfig, WordLSTM
from igkit.plugins.text.vocab import Vocabulary

WORDS = ["<unk>", "<eos>", "the", "stock", "market", "fell", "rose", "more", "than", "shares", "N", "mr."]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.manual_seed(0)
    lm = LanguageModel(WordLSTM(LMConfig(vocab_size=len(WORDS), hidden=8, layers=2, init_scale=0.5)),
                       Vocabulary(WORDS), {"note": "untrained, for tests"})
    path = tmp_path_factory.mktemp("model") / "tiny"
    save_language_model(lm, path)
    return path


def test_round_trip_keeps_weights_in_half_precision(model_path):
    lm = load_language_model(model_path)
    again = load_language_model(str(model_path) + ".json")
    assert lm.vocab.words == WORDS and lm.info == {"note": "untrained, for tests"}
    for (name, a), (_, b) in zip(lm.model.state_dict().items(), again.model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
        torch.testing.assert_close(a, a.half().float(), msg=name)


def test_weights_with_another_vocabulary_are_rejected(model_path, tmp_path):
    weights, config = model_paths(model_path)
    document = json.loads(config.read_text())
    document["vocabulary"] = document["vocabulary"][:2] + document["vocabulary"][2:][::-1]
    (tmp_path / "swapped.json").write_text(json.dumps(document))
    (tmp_path / "swapped.safetensors").write_bytes(weights.read_bytes())
    with pytest.raises(IGInputError, match="do not belong together"):
        load_language_model(tmp_path / "swapped")


def test_weights_with_another_configuration_are_rejected(model_path, tmp_path):
    weights, config = model_paths(model_path)
    document = json.loads(config.read_text())
    document["config"]["hidden"] = 16
    (tmp_path / "bigger.json").write_text(json.dumps(document))
    (tmp_path / "bigger.safetensors").write_bytes(weights.read_bytes())
    with pytest.raises(IGInputError, match="do not belong together"):
        load_language_model(tmp_path / "bigger")


def test_missing_and_foreign_files_are_explained(model_path, tmp_path):
    with pytest.raises(IGInputError, match="not found"):
        load_language_model(tmp_path / "absent")
    (tmp_path / "junk.json").write_text("{}")
    (tmp_path / "junk.safetensors").write_text("not a tensor file")
    with pytest.raises(IGInputError, match="not an igkit text model"):
        load_language_model(tmp_path / "junk")


def test_data_of_another_vocabulary_is_rejected(model_path):
    lm = load_language_model(model_path)
    with pytest.raises(IGInputError, match="differs from the vocabulary"):
        check_same_vocabulary(lm, Vocabulary(WORDS[:-1]), "other data")


def test_explain_writes_every_output(model_path, tmp_path, capsys):
    out = tmp_path / "one"
    assert main(["text", "explain", "The stock-market fell more", "--model", str(model_path),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completeness_error"] <= 0.01
    assert summary["words"] == ["the", "stock-market", "fell", "more"]
    words = json.loads((out / "explanation.json").read_text())["explanations"][0]["words"]
    assert [w["oov"] for w in words] == [False, True, False, False]
    assert f"Prediction for {summary['target']}: {summary['score_input']:.4f}" in printed.out
    assert "stock-market*" in printed.out and "stock-market" in printed.err  # marked and warned
    for name in ("table.txt", "table.md", "words.csv", "attribution.html", "explanation.json"):
        assert (out / name).stat().st_size > 0
    assert "rgba(" in (out / "attribution.html").read_text()


def test_target_and_scale(model_path, tmp_path, capsys):
    assert main(["text", "explain", "the stock", "--target", "Rose", "--scale", "--steps", "8",
                 "--tolerance", "0.05", "--model", str(model_path), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Prediction for rose:") and "(*1e-3)" in out
    assert json.loads((tmp_path / "summary.json").read_text())["target"] == "rose"


@pytest.mark.parametrize("argv, message", [
    (["   "], "has no words"),
    (["the stock", "--target", "shars"], "closest vocabulary words: shares"),
    (["--input", "/nonexistent/file.txt"], "not found"),
    ([], "give either a CONTEXT or --input"),
])
def test_bad_input_is_a_clear_error(model_path, tmp_path, capsys, argv, message):
    assert main(["text", "explain", *argv, "--model", str(model_path), "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_one_bad_line_does_not_lose_the_others(model_path, tmp_path, capsys):
    lines = tmp_path / "contexts.txt"
    lines.write_text("the stock\n...\nmr. smith's shares rose N %\tthan\nthe market\tzebra\nthe\n")
    out = tmp_path / "batch"
    assert main(["text", "explain", "--input", str(lines), "--model", str(model_path), "--out", str(out)]) == 0
    report = json.loads((out / "explanations.json").read_text())
    assert [e["context"] for e in report["explanations"]] == [
        "line 1: the stock", "line 3: mr. smith's shares rose N %", "line 5: the"]
    assert report["explanations"][1]["target"] == "than"
    assert set(report["failed"]) == {"line 2: ...", "line 4: the market"}
    assert "skipped 'line 4: the market'" in capsys.readouterr().err
    assert all(e["completeness_error"] <= 0.01 for e in report["explanations"])


def test_a_file_of_only_bad_lines_still_reports_why(model_path, tmp_path):
    lines = tmp_path / "bad.txt"
    lines.write_text("!!!\nthe\tqwertyuiop\n")
    assert main(["text", "explain", "--input", str(lines), "--model", str(model_path), "--out", str(tmp_path)]) == 2
    report = json.loads((tmp_path / "explanations.json").read_text())
    assert report["explanations"] == [] and len(report["failed"]) == 2


def test_every_position_of_a_corpus_slice(model_path, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the stock fell\nthe market rose more than N\n")
    out = tmp_path / "positions"
    assert main(["text", "explain", "--input", str(corpus), "--every-position", "--window", "3",
                 "--model", str(model_path), "--out", str(out)]) == 0
    report = json.loads((out / "explanations.json").read_text())
    tokens = "the stock fell <eos> the market rose more than N <eos>".split()
    assert len(report["explanations"]) == len(tokens) - 3
    first = report["explanations"][0]
    assert [w["word"] for w in first["words"]] == tokens[:3] and first["target"] == tokens[3]


def test_long_context_runs_in_bounded_passes(model_path, tmp_path):
    context = " ".join(["the stock fell more than the market"] * 150)   # 1050 words
    assert main(["text", "explain", context, "--model", str(model_path), "--out", str(tmp_path),
                 "--batch-size", "4", "--tolerance", "0.01"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary["words"]) == 1050 and summary["completeness_error"] <= 0.01


def test_generic_explain_command_knows_the_text_domain(model_path, tmp_path):
    assert main(["explain", "--domain", "text", "the stock fell", "...", "--model", str(model_path),
                 "--out", str(tmp_path), "--steps", "64"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert list(report["written"]) == ["the stock fell"] and "has no words" in report["failed"]["..."]
    summary = json.loads((tmp_path / "the_stock_fell" / "summary.json").read_text())
    assert summary["completeness_error"] <= 0.01 and summary["domain"] == "text"
    assert (tmp_path / "the_stock_fell" / "table.md").read_text().startswith(f"**Prediction for {summary['target']}")
