"""Issue 10's reliability categories for the text domain: each asserts the right result or a clear
error, and that the other items' results are intact and correct.

Categories: colliding names; a replaced input file; a rerun with other settings (refused,
``--overwrite`` replaces, nothing stale left); interrupts (during integration and during
writing) and resume; BOM / CRLF / non-UTF-8 input; one bad item among good ones; exit codes
0/1/2/130; no traceback for user errors; long contexts (``--max-words``); a per-word table that
grows linearly; one integration default on every route.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import igkit
import igkit.run.runner
from igkit.cli.main import main
from igkit.plugins.text import render
from igkit.plugins.text.checkpoint import load_language_model
from igkit.plugins.text.domain import TextDomain

from text_models import save_tiny_language_model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return save_tiny_language_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def lm(model_path):
    return load_language_model(model_path)


def run(model_path, *argv: str) -> int:
    return main(["text", "explain", *argv, "--model", str(model_path), "--quiet"])


def report_of(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def entries(out: Path) -> dict[str, dict]:
    return {e["source"]: e for e in report_of(out)["items"]}


def record(out: Path, source: str) -> dict:
    return json.loads((out / entries(out)[source]["folder"] / "explanation.json").read_text())


def alone(lm, text: str, **settings) -> np.ndarray:
    """The integrated gradients of ``text`` explained on its own through the Python API."""
    (exp,) = igkit.explain("text", [text], model=lm, **settings)
    return exp.ig


def ig_of(rec: dict) -> np.ndarray:
    return np.array([w["integrated_gradient"] for w in rec["words"]])


# --- colliding names -------------------------------------------------------------------------------
def test_contexts_whose_names_collide_get_their_own_folders(model_path, lm, tmp_path, capsys):
    texts = ["the stock!", "the stock?", "The stock", "thé stock", "the stock " + "fell " * 12 + "more",
             "the stock " + "fell " * 12 + "than"]
    out = tmp_path / "out"
    assert run(model_path, *texts, "--out", str(out)) == 0
    found = entries(out)
    folders = [found[f"argument {n}"]["folder"] for n in range(1, len(texts) + 1)]
    assert len(set(folders)) == len(texts)
    for n, text in enumerate(texts, start=1):
        rec = record(out, f"argument {n}")
        assert rec["context"] == text
        np.testing.assert_allclose(ig_of(rec), alone(lm, text), rtol=1e-5, atol=1e-8)
    with (out / "words.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["item"] for r in rows} == set(folders)


def test_same_file_name_in_two_folders(model_path, lm, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "contexts.txt").write_text("the stock fell\n")
    (tmp_path / "b" / "contexts.txt").write_text("the market rose\n")
    out = tmp_path / "out"
    assert run(model_path, "--input", str(tmp_path / "a" / "contexts.txt"),
               "--input", str(tmp_path / "b" / "contexts.txt"), "--out", str(out)) == 0
    assert record(out, f"{tmp_path / 'a' / 'contexts.txt'} line 1")["context"] == "the stock fell"
    assert record(out, f"{tmp_path / 'b' / 'contexts.txt'} line 1")["context"] == "the market rose"


def test_repeated_context_shares_one_folder(model_path, tmp_path):
    out = tmp_path / "out"
    assert run(model_path, "the stock fell", "the market", "the stock fell", "--out", str(out)) == 0
    found = entries(out)
    assert found["argument 3"]["status"] == "duplicate" and found["argument 3"]["same_as"] == "argument 1"
    assert found["argument 3"]["folder"] == found["argument 1"]["folder"]


# --- a replaced input file -------------------------------------------------------------------------
def test_replaced_input_file_is_recomputed(model_path, lm, tmp_path, capsys):
    lines = tmp_path / "contexts.txt"
    lines.write_text("the stock fell\nthe market rose\nmr. smith\n")
    out = tmp_path / "out"
    assert run(model_path, "--input", str(lines), "--out", str(out)) == 0
    old_folder = entries(out)[f"{lines} line 2"]["folder"]
    lines.write_text("the stock fell\nshares fell more than\nmr. smith\n")
    assert run(model_path, "--input", str(lines), "--out", str(out)) == 0
    found = entries(out)
    assert [found[f"{lines} line {n}"]["status"] for n in (1, 2, 3)] == ["kept", "written", "kept"]
    assert found[f"{lines} line 2"]["folder"] != old_folder
    rec = record(out, f"{lines} line 2")
    assert rec["context"] == "shares fell more than"
    np.testing.assert_allclose(ig_of(rec), alone(lm, "shares fell more than"), rtol=1e-5, atol=1e-8)
    words = (out / "words.csv").read_text()
    assert "rose" not in words and "shares" in words          # the run's tables hold this run's items
    assert "market" not in (out / "tables.md").read_text()


# --- rerun with other settings ---------------------------------------------------------------------
def test_rerun_with_other_settings_is_refused_and_overwrite_leaves_nothing_stale(model_path, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(model_path, "the stock fell", "the market", "--out", str(out)) == 0
    first = {e["folder"] for e in report_of(out)["items"]}
    capsys.readouterr()
    assert run(model_path, "the stock fell", "--target", "rose", "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("igkit: error:") and "other settings" in err and "--overwrite" in err
    assert {e["folder"] for e in report_of(out)["items"]} == first     # untouched
    assert run(model_path, "the stock fell", "--target", "rose", "--no-pictures", "--overwrite",
               "--out", str(out)) == 0
    (entry,) = report_of(out)["items"]
    assert json.loads((out / entry["folder"] / "summary.json").read_text())["target"] == "rose"
    assert not (out / "attribution.html").exists() and not list(out.glob("*/attribution.html"))
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [entry["folder"]]
    assert run(model_path, "the stock fell", "--max-words", "50", "--no-pictures", "--target", "rose",
               "--out", str(out)) == 2


# --- interrupts and resume -------------------------------------------------------------------------
CONTEXTS = ["the", "the stock", "the stock fell", "the stock fell more", "the stock fell more than"]


def _interrupt_on_call(monkeypatch, n: int) -> list[int]:
    calls: list[int] = []
    real = igkit.run.runner.integrated_gradients

    def interrupting(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(igkit.run.runner, "integrated_gradients", interrupting)
    return calls


def test_interrupt_keeps_finished_items_and_the_rerun_computes_only_the_rest(model_path, lm, tmp_path,
                                                                            monkeypatch, capsys):
    out = tmp_path / "out"
    _interrupt_on_call(monkeypatch, 3)   # contexts of different lengths: one call each
    assert run(model_path, *CONTEXTS, "--out", str(out)) == 130
    assert "interrupted" in capsys.readouterr().err
    report = report_of(out)
    assert report["status"] == "interrupted" and report["counts"]["written"] == 2
    assert not list(out.glob(".partial-*"))
    calls = _interrupt_on_call(monkeypatch, 0)
    assert run(model_path, *CONTEXTS, "--out", str(out)) == 0
    report = report_of(out)
    assert report["status"] == "complete" and len(calls) == 3
    assert report["counts"] == {"written": 3, "kept": 2, "duplicate": 0, "skipped": 0}
    for n, text in enumerate(CONTEXTS, start=1):
        np.testing.assert_allclose(ig_of(record(out, f"argument {n}")), alone(lm, text), rtol=1e-5, atol=1e-8)
    assert len((out / "words.csv").read_text().splitlines()) == 1 + sum(len(t.split()) for t in CONTEXTS)


def test_interrupt_while_writing_leaves_no_partial_folder(model_path, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = render.write_item_files
    written: list[int] = []

    def interrupting(*args, **kwargs):
        written.append(1)
        if len(written) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(render, "write_item_files", interrupting)
    assert run(model_path, *CONTEXTS[:3], "--out", str(out)) == 130
    report = report_of(out)
    assert report["status"] == "interrupted" and report["counts"]["written"] == 1
    assert not list(out.glob(".partial-*"))
    assert len([p for p in out.iterdir() if p.is_dir()]) == 1
    monkeypatch.undo()
    assert run(model_path, *CONTEXTS[:3], "--out", str(out)) == 0
    assert report_of(out)["counts"] == {"written": 2, "kept": 1, "duplicate": 0, "skipped": 0}


# --- BOM, CRLF, other encodings --------------------------------------------------------------------
def test_bom_and_crlf_read_the_same_contexts(model_path, lm, tmp_path):
    lines = tmp_path / "contexts.txt"
    lines.write_bytes("\ufeffthe stock fell\r\nthe market\tthan\r\n".encode("utf-8"))
    out = tmp_path / "out"
    assert run(model_path, "the stock fell", "--input", str(lines), "--out", str(out)) == 0
    found = entries(out)
    assert found[f"{lines} line 1"]["status"] == "duplicate"      # exactly the typed context
    assert found[f"{lines} line 1"]["same_as"] == "argument 1"
    first = record(out, "argument 1")
    assert [w["word"] for w in first["words"]] == ["the", "stock", "fell"] and not any(
        w["oov"] for w in first["words"])
    assert record(out, f"{lines} line 2")["target"] == "than"


def test_bom_corpus_for_every_position(model_path, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes("\ufeffthe stock fell\r\nthe market rose\r\n".encode("utf-8"))
    out = tmp_path / "out"
    assert run(model_path, "--input", str(corpus), "--every-position", "--window", "2", "--out", str(out)) == 0
    rec = record(out, f"{corpus} position 2")
    assert [w["word"] for w in rec["words"]] == ["the", "stock"] and rec["target"] == "fell"
    assert not any(w["oov"] for w in rec["words"])


def test_non_utf8_file_is_a_clear_error_naming_file_and_line(model_path, tmp_path, capsys):
    lines = tmp_path / "latin1.txt"
    lines.write_bytes("the stock\nthe market\nthe caf\u00e9 rose\n".encode("latin-1"))
    assert run(model_path, "--input", str(lines), "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert err.startswith("igkit: error:") and f"{lines}, line 3" in err and "UTF-8" in err
    assert "Traceback" not in err


# --- one bad item among good ones ------------------------------------------------------------------
def test_bad_items_are_skipped_and_the_others_are_right(model_path, lm, tmp_path, capsys):
    lines = tmp_path / "contexts.txt"
    lines.write_text("the stock fell\n?!\nthe market\tzebra\n\nthe market\tthan\nmr. smith\n")
    out = tmp_path / "out"
    assert run(model_path, "--input", str(lines), "--out", str(out)) == 1
    found = entries(out)
    assert found[f"{lines} line 2"]["reason"].startswith("the context '?!' has no words")
    assert "target word 'zebra'" in found[f"{lines} line 3"]["reason"]
    assert f"{lines} line 4" not in found                      # an empty line is no item
    for n, text, settings in [(1, "the stock fell", {}), (5, "the market", {"target": "than"}),
                              (6, "mr. smith", {})]:
        rec = record(out, f"{lines} line {n}")
        np.testing.assert_allclose(ig_of(rec), alone(lm, text, **settings), rtol=1e-5, atol=1e-8)
    assert record(out, f"{lines} line 5")["target"] == "than"


# --- exit codes and errors without tracebacks ------------------------------------------------------
def test_exit_codes(model_path, tmp_path, capsys):
    assert run(model_path, "the stock", "--out", str(tmp_path / "a")) == 0
    assert run(model_path, "the stock", "...", "--out", str(tmp_path / "b")) == 1
    with pytest.raises(SystemExit) as usage:
        run(model_path, "the stock", "--window", "0", "--out", str(tmp_path / "c"))
    assert usage.value.code == 2


@pytest.mark.parametrize("make_argv, message", [
    (lambda t: ["the stock", "--out", str(t / "file.txt")], "is a file"),
    (lambda t: ["the stock", "--every-position", "--out", str(t / "o")], "--input FILE"),
    (lambda t: ["--input", str(t / "corpus.txt"), "--every-position", "--window", "300",
                "--out", str(t / "o")], "--max-words"),
    (lambda t: ["--input", str(t / "corpus.txt"), "--every-position", "--window", "50",
                "--out", str(t / "o")], "need at least 51"),
    (lambda t: ["--input", str(t / "empty.txt"), "--out", str(t / "o")], "no non-empty lines"),
    (lambda t: ["--input", str(t / "folder"), "--out", str(t / "o")], "is a folder"),
])
def test_user_errors_end_in_one_error_line(model_path, tmp_path, capsys, make_argv, message):
    (tmp_path / "file.txt").write_text("not a folder\n")
    (tmp_path / "corpus.txt").write_text("the stock fell\n")
    (tmp_path / "empty.txt").write_text("\n\n")
    (tmp_path / "folder").mkdir()
    assert run(model_path, *make_argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("igkit: error:") and message in err and "Traceback" not in err


# --- long contexts and the per-word table ----------------------------------------------------------
def test_long_context_is_cut_to_its_last_max_words_with_a_warning(model_path, lm, tmp_path, capsys):
    words = (["the", "stock", "fell", "more", "than", "the", "market"] * 40)[:250]
    out = tmp_path / "out"
    assert run(model_path, " ".join(words), "--out", str(out), "--steps", "8") == 0
    err = capsys.readouterr().err
    assert "has 250 words; explaining its last 200" in err and "--max-words" in err
    summary = json.loads((out / entries(out)["argument 1"]["folder"] / "summary.json").read_text())
    assert summary["truncated_from"] == 250 and summary["words"] == words[-200:]
    assert "only its last 200 were explained" in (out / entries(out)["argument 1"]["folder"] / "table.txt"
                                                   ).read_text()
    out2 = tmp_path / "all"
    assert run(model_path, " ".join(words), "--out", str(out2), "--steps", "8", "--max-words", "300") == 0
    summary = json.loads((out2 / entries(out2)["argument 1"]["folder"] / "summary.json").read_text())
    assert summary["truncated_from"] is None and len(summary["words"]) == 250


def test_words_csv_grows_linearly_with_the_context(model_path, tmp_path):
    sizes = {}
    for n in (100, 400):
        out = tmp_path / f"n{n}"
        context = " ".join((["the", "stock", "fell", "more", "than"] * 100)[:n])
        assert run(model_path, context, "--out", str(out), "--steps", "4", "--max-words", "1000",
                   "--no-pictures") == 0
        table = out / entries(out)["argument 1"]["folder"] / "words.csv"
        assert len(table.read_text().splitlines()) == n + 1
        assert len((out / "words.csv").read_text().splitlines()) == n + 1
        sizes[n] = table.stat().st_size
    assert sizes[400] / sizes[100] < 4.5           # linear (the old table repeated the context: 16x)
    assert sizes[400] / 400 < 80                    # bytes per word row


# --- one integration default -----------------------------------------------------------------------
def test_one_integration_default_on_every_route(model_path, lm, tmp_path):
    assert TextDomain.integration == igkit.Integration(tolerance=0.001)
    (exp,) = igkit.explain("text", ["the stock fell"], model=lm)
    assert exp.result.meta["tolerance"] == 0.001 and exp.result.method == "adaptive_simpson"
    for argv in (["text", "explain"], ["explain", "--domain", "text"]):
        out = tmp_path / argv[0]
        assert main([*argv, "the stock fell", "--model", str(model_path), "--out", str(out), "--quiet"]) == 0
        integration = json.loads((out / "run.json").read_text())["integration"]
        assert integration["tolerance"] == 0.001
        np.testing.assert_allclose(ig_of(record(out, "argument 1")), exp.ig, rtol=1e-6, atol=1e-9)
