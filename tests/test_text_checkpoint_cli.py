"""Checkpoints that reject a foreign vocabulary/config, and ``igkit text explain`` end to end."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from igkit.cli.main import main
from igkit.errors import IGInputError, ModelError
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
    with pytest.raises(ModelError, match="do not belong together"):
        load_language_model(tmp_path / "swapped")


def test_weights_with_another_configuration_are_rejected(model_path, tmp_path):
    weights, config = model_paths(model_path)
    document = json.loads(config.read_text())
    document["config"]["hidden"] = 16
    (tmp_path / "bigger.json").write_text(json.dumps(document))
    (tmp_path / "bigger.safetensors").write_bytes(weights.read_bytes())
    with pytest.raises(ModelError, match="do not belong together"):
        load_language_model(tmp_path / "bigger")


def test_missing_and_foreign_files_are_explained(model_path, tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_language_model(tmp_path / "absent")
    weights, _ = model_paths(model_path)
    (tmp_path / "junk.json").write_text("{}")
    (tmp_path / "junk.safetensors").write_bytes(weights.read_bytes())
    with pytest.raises(ModelError, match="not an igkit text model"):
        load_language_model(tmp_path / "junk")
    (tmp_path / "junk.safetensors").write_text("not a tensor file")
    with pytest.raises(ModelError, match="unreadable"):
        load_language_model(tmp_path / "junk")


def test_weights_of_another_model_beside_this_json_are_rejected(model_path, tmp_path):
    torch.manual_seed(1)
    other = LanguageModel(WordLSTM(LMConfig(vocab_size=len(WORDS), hidden=8, layers=2, init_scale=0.5)),
                          Vocabulary(WORDS))
    save_language_model(other, tmp_path / "other")
    weights, config = model_paths(model_path)
    (tmp_path / "mixed.json").write_bytes(config.read_bytes())
    (tmp_path / "mixed.safetensors").write_bytes((tmp_path / "other.safetensors").read_bytes())
    with pytest.raises(ModelError, match="do not belong together"):
        load_language_model(tmp_path / "mixed")


def test_model_errors_end_in_one_line(tmp_path, capsys):
    assert main(["text", "explain", "the stock", "--model", str(tmp_path / "absent"),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("igkit: error:") and "does not exist" in err and "Traceback" not in err


def test_data_of_another_vocabulary_is_rejected(model_path):
    lm = load_language_model(model_path)
    with pytest.raises(IGInputError, match="differs from the vocabulary"):
        check_same_vocabulary(lm, Vocabulary(WORDS[:-1]), "other data")


def item_folder(out, source="argument 1"):
    """The folder ``report.json`` gives for ``source``."""
    report = json.loads((out / "report.json").read_text())
    (entry,) = [e for e in report["items"] if e["source"] == source]
    return out / entry["folder"]


def test_explain_writes_every_output(model_path, tmp_path, capsys):
    out = tmp_path / "one"
    assert main(["text", "explain", "The stock-market fell more", "--model", str(model_path),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr()
    folder = item_folder(out)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["completeness_error"] <= 0.001 and summary["domain"] == "text"
    assert summary["words"] == ["the", "stock-market", "fell", "more"]
    assert summary["unknown_words"] == ["stock-market"] and summary["truncated_from"] is None
    record = json.loads((folder / "explanation.json").read_text())
    assert [w["oov"] for w in record["words"]] == [False, True, False, False]
    assert f"Prediction for {summary['target']}: {summary['score_input']:.4f}" in printed.out
    assert "stock-market*" in printed.out and "stock-market" in printed.err  # marked and warned
    for name in ("table.txt", "table.md", "words.csv", "attribution.html", "explanation.json"):
        assert (folder / name).stat().st_size > 0
    assert "red: raises the probability of the next word relative to the baseline" in (folder / "attribution.html").read_text()
    for name in ("words.csv", "tables.md", "attribution.html", "report.json", "run.json"):
        assert (out / name).is_file()
    assert printed.out.count("Prediction for") == 1


def test_target_and_scale(model_path, tmp_path, capsys):
    assert main(["text", "explain", "the stock", "--target", "Rose", "--scale", "--steps", "8",
                 "--model", str(model_path), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "\nPrediction for rose:" in out and "(*1e-3)" in out
    assert json.loads((item_folder(tmp_path) / "summary.json").read_text())["target"] == "rose"


@pytest.mark.parametrize("argv, code, message", [
    (["   "], 1, "has no words"),
    (["the stock", "--target", "shars"], 1, "closest vocabulary words: shares"),
    (["--input", "/nonexistent/file.txt"], 2, "does not exist"),
    ([], 2, "no text items given"),
    (["the stock", "--every-position"], 2, "give it with --input FILE"),
])
def test_bad_input_is_a_clear_message(model_path, tmp_path, capsys, argv, code, message):
    assert main(["text", "explain", *argv, "--model", str(model_path), "--out", str(tmp_path / "o")]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_one_bad_line_does_not_lose_the_others(model_path, tmp_path, capsys):
    lines = tmp_path / "contexts.txt"
    lines.write_text("the stock\n...\nmr. smith's shares rose N %\tthan\nthe market\tzebra\nthe\n")
    out = tmp_path / "batch"
    assert main(["text", "explain", "--input", str(lines), "--model", str(model_path), "--out", str(out)]) == 1
    report = json.loads((out / "report.json").read_text())
    status = {e["source"]: e["status"] for e in report["items"]}
    assert status == {f"{lines} line {n}": s for n, s in
                      [(1, "written"), (2, "skipped"), (3, "written"), (4, "skipped"), (5, "written")]}
    assert "skipped " + str(lines) + " line 4: target word 'zebra'" in capsys.readouterr().err
    summary = json.loads((item_folder(out, f"{lines} line 3") / "summary.json").read_text())
    assert summary["target"] == "than" and summary["context"] == "mr. smith's shares rose N %"
    for n in (1, 3, 5):
        assert json.loads((item_folder(out, f"{lines} line {n}") / "summary.json").read_text()
                          )["completeness_error"] <= 0.001


def test_a_file_of_only_bad_lines_still_reports_why(model_path, tmp_path):
    lines = tmp_path / "bad.txt"
    lines.write_text("!!!\nthe\tqwertyuiop\n")
    out = tmp_path / "out"
    assert main(["text", "explain", "--input", str(lines), "--model", str(model_path), "--out", str(out)]) == 1
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["skipped"] == 2 and report["counts"]["written"] == 0
    assert not (out / "words.csv").exists()


def test_every_position_of_a_corpus_slice(model_path, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the stock fell\nthe market rose more than N\n")
    out = tmp_path / "positions"
    assert main(["text", "explain", "--input", str(corpus), "--every-position", "--window", "3",
                 "--model", str(model_path), "--out", str(out)]) == 0
    tokens = "the stock fell <eos> the market rose more than N <eos>".split()
    report = json.loads((out / "report.json").read_text())
    assert [e["source"] for e in report["items"]] == [f"{corpus} position {p}" for p in range(3, len(tokens))]
    first = json.loads((item_folder(out, f"{corpus} position 3") / "explanation.json").read_text())
    assert [w["word"] for w in first["words"]] == tokens[:3] and first["target"] == tokens[3]
    out2 = tmp_path / "slice"
    assert main(["text", "explain", "--input", str(corpus), "--every-position", "--window", "3", "--start", "2",
                 "--limit", "3", "--model", str(model_path), "--out", str(out2), "--steps", "4"]) == 0
    report = json.loads((out2 / "report.json").read_text())
    assert [e["source"] for e in report["items"]] == [f"{corpus} position {p}" for p in (5, 6, 7)]


def test_long_context_runs_in_bounded_passes(model_path, tmp_path):
    context = " ".join(["the stock fell more than the market"] * 150)   # 1050 words
    assert main(["text", "explain", context, "--model", str(model_path), "--out", str(tmp_path),
                 "--batch-size", "4", "--tolerance", "0.01", "--max-words", "2000"]) == 0
    summary = json.loads((item_folder(tmp_path) / "summary.json").read_text())
    assert len(summary["words"]) == 1050 and summary["completeness_error"] <= 0.01


def test_generic_explain_command_is_the_text_explain_command(model_path, tmp_path, capsys):
    args = ["the stock fell", "...", "--model", str(model_path), "--quiet"]
    assert main(["explain", "--domain", "text", *args, "--out", str(tmp_path / "a")]) == 1
    assert main(["text", "explain", *args, "--out", str(tmp_path / "b")]) == 1
    runs = [json.loads((tmp_path / d / "run.json").read_text()) for d in "ab"]
    assert runs[0] == runs[1] and runs[0]["integration"]["tolerance"] == 0.001
    reports = [json.loads((tmp_path / d / "report.json").read_text()) for d in "ab"]
    assert reports[0]["items"] == reports[1]["items"]
    assert "has no words" in reports[0]["items"][1]["reason"]
    folder = reports[0]["items"][0]["folder"]
    for name in ("table.md", "words.csv"):
        assert (tmp_path / "a" / folder / name).read_text() == (tmp_path / "b" / folder / name).read_text()
    summary = json.loads((tmp_path / "a" / folder / "summary.json").read_text())
    assert (tmp_path / "a" / folder / "table.md").read_text().startswith(f"**Prediction for {summary['target']}")


def test_other_methods_add_a_column_per_word(model_path, tmp_path):
    out = tmp_path / "out"
    assert main(["text", "explain", "the stock fell", "the market", "--methods", "grad_x_input",
                 "--model", str(model_path), "--out", str(out), "--quiet", "--no-pictures"]) == 0
    for table in (item_folder(out) / "words.csv", out / "words.csv"):
        with table.open() as fh:
            rows = list(csv.DictReader(fh))
        assert rows and all(abs(float(r["grad_x_input"]) - float(r["gradient_x_embedding"])) < 1e-5 for r in rows)
    assert len(rows) == 5
