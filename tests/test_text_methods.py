"""Issue 11 for the text domain: the other attribution methods through the one explain path, the
side-by-side views, and the known-answer scoring command (``igkit text score-methods``)."""
from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
import torch

import igkit
from igkit.cli.main import main
from igkit.domain import Prepared
from igkit.plugins.text.attribution import next_word_probability
from igkit.plugins.text.checkpoint import load_language_model
from igkit.plugins.text.contexts import read_contexts
from igkit.plugins.text.domain import TextDomain
from igkit.plugins.text.lstm_domain import reference_embeddings
from igkit.plugins.text.methods import GRADIENT_METHODS, REFERENCE_CONTEXTS
from igkit.plugins.text.scoring import CONTROLS, METRICS, context_curves, score_methods

from text_models import save_tiny_language_model

CONTEXTS = ["the stock market fell", "mr. shares rose more", "the market rose", "N shares fell than the"]
RUNNER_METHODS = ["saliency", "grad_x_input", "occlusion", "smoothgrad", "interior_gradient",
                  "expected_gradients", "multi_baseline_ig", "guided_ig"]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return save_tiny_language_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def lm(model_path):
    return load_language_model(model_path)


@pytest.fixture(scope="module")
def explained(lm):
    found = igkit.explain("text", CONTEXTS, model=lm, methods=RUNNER_METHODS)
    assert not found.skipped
    return found


def probability(lm, embeddings: torch.Tensor, ids: list[int], target: int) -> torch.Tensor:
    net = lm.model
    forward = next_word_probability(net, net.embedding, output_layer=net.decoder)
    return forward(embeddings, torch.tensor([ids]).expand(embeddings.shape[0], -1))[:, target]


# --- methods through the runner ---------------------------------------------------------------------
def test_every_listed_method_lands_in_the_explanation_one_value_per_word(explained):
    for exp in explained:
        assert list(exp.method_values) == RUNNER_METHODS
        for name, values in exp.method_values.items():
            assert values.shape == (len(exp.words),) and np.isfinite(values).all(), name
        assert set(exp.attribution.methods) == set(RUNNER_METHODS)


def test_occlusion_is_the_drop_when_each_word_is_the_zero_embedding(lm, explained):
    for exp in explained:
        ids = exp.context.ids
        x = lm.model.embedding(torch.tensor([ids]))[0].detach()
        target = int(exp.attribution.prepared.target)
        with torch.no_grad():
            full = probability(lm, x[None], ids, target)[0]
            occluded = torch.stack([x.clone().index_fill_(0, torch.tensor([i]), 0.0) for i in range(len(ids))])
            drops = (full - probability(lm, occluded, ids, target)).numpy()
        np.testing.assert_allclose(exp.method_values["occlusion"], drops, rtol=1e-4, atol=1e-7)


def test_gradient_methods_are_norms_and_attribution_methods_sums(lm, explained):
    exp = explained[0]
    ids = exp.context.ids
    x = lm.model.embedding(torch.tensor([ids])).detach().requires_grad_(True)
    p = probability(lm, x, ids, int(exp.attribution.prepared.target))[0]
    (grad,) = torch.autograd.grad(p, x)
    np.testing.assert_allclose(exp.method_values["saliency"], grad[0].norm(dim=-1).numpy(), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(exp.method_values["grad_x_input"], (grad * x)[0].sum(-1).detach().numpy(),
                               rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(exp.method_values["grad_x_input"], exp.gradient, rtol=1e-4, atol=1e-7)
    record = exp.to_dict()
    assert record["method_reductions"] == {m: "norm" if m in GRADIENT_METHODS else "sum" for m in RUNNER_METHODS}
    assert all(exp.method_values[m].min() >= 0 for m in GRADIENT_METHODS & set(RUNNER_METHODS))


def test_expected_gradients_references_are_random_vocabulary_words_of_the_same_length(lm, explained):
    ref = reference_embeddings(lm.model, 4)
    assert ref.shape == (REFERENCE_CONTEXTS, 4, lm.model.config.hidden)
    table = lm.model.embedding.weight.detach()
    assert all(bool((table == row).all(-1).any()) for row in ref.reshape(-1, ref.shape[-1]))
    torch.testing.assert_close(ref, reference_embeddings(lm.model, 4))       # seeded: same every batch
    # multiple-baseline IG adds up to p(x) − mean p(reference) (completeness over the references)
    exp = explained[0]
    ids, target = exp.context.ids, int(exp.attribution.prepared.target)
    with torch.no_grad():
        gap = float(probability(lm, reference_embeddings(lm.model, len(ids)), ids, target).mean())
    expected = exp.probability - gap
    assert exp.method_values["multi_baseline_ig"].sum() == pytest.approx(expected, abs=0.02 * abs(expected) + 1e-6)


def test_deterministic_methods_do_not_depend_on_the_other_items_of_a_group(lm, explained):
    (alone,) = igkit.explain("text", [CONTEXTS[0]], model=lm, methods=["occlusion", "saliency", "multi_baseline_ig"])
    for name in ("occlusion", "saliency", "multi_baseline_ig"):
        np.testing.assert_allclose(alone.method_values[name], explained[0].method_values[name],
                                   rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("method, words", [("grad_cam", "not meaningful for an LSTM"),
                                           ("guided_backprop", "has none"), ("blur_ig", "for images"),
                                           ("xrai", "for images")])
def test_methods_the_text_domain_cannot_offer_stop_with_the_reason(model_path, lm, tmp_path, capsys, method, words):
    code = main(["text", "explain", "the stock fell", "--methods", f"occlusion,{method}", "--model",
                 str(model_path), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("igkit: error:") and words in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()                       # stopped before any work
    with pytest.raises(igkit.IGInputError, match=words):   # the Python API refuses up front too
        igkit.explain("text", ["the stock fell", "the market rose"], model=lm, methods=[method])


def test_guided_backprop_runs_when_the_network_has_relus():
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU())
    batch = Prepared(name="x", inputs=torch.zeros(1, 4, 3), forward=lambda x: x, context={"net": net})
    assert TextDomain().method_options("guided_backprop", batch) == {"model": net}
    groups = TextDomain().method_options("occlusion", batch)["groups"]
    assert groups.shape == (4, 3) and groups[:, 0].tolist() == [0, 1, 2, 3] and bool((groups.T == groups[:, 0]).all())


# --- side by side ----------------------------------------------------------------------------------
def test_explain_with_methods_writes_a_column_per_method_in_every_view(model_path, tmp_path, capsys):
    out = tmp_path / "out"
    methods = ["occlusion", "saliency", "expected_gradients"]
    assert main(["text", "explain", *CONTEXTS[:2], "--methods", ",".join(methods), "--model", str(model_path),
                 "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    folders = [out / e["folder"] for e in report["items"]]
    for folder in folders:
        record = json.loads((folder / "explanation.json").read_text())
        assert record["methods"] == methods
        rows = list(csv.DictReader((folder / "words.csv").open()))
        assert list(rows[0])[-3:] == methods
        for row, word in zip(rows, record["words"]):
            for m in methods:
                assert float(row[m]) == pytest.approx(word[m], rel=1e-6, abs=1e-12)
        table = (folder / "table.txt").read_text()
        assert all(m in table.splitlines()[1] for m in methods)
        page = (folder / "attribution.html").read_text()
        assert all(f"<th>{m}</th>" in page for m in methods)
        for word in record["words"]:          # every value of the CSV is in the page's table
            assert all(f">{word[m]:.4f}</td>" in page for m in methods)
        png = (folder / "methods.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    run_rows = list(csv.DictReader((out / "words.csv").open()))
    assert len(run_rows) == sum(len(json.loads((f / "explanation.json").read_text())["words"]) for f in folders)
    assert list(run_rows[0])[-3:] == methods
    page = (out / "attribution.html").read_text()
    assert page.count("<table>") == 2 and "One colour scale per column over this whole page" in page
    scales = dict(re.findall(r"(\w+) ([-\d.e]+)(?:,|\))", page.split("largest |value| on the page: ")[1]
                             .split(";")[0] + ")"))
    for m in methods:   # the page's scale for a method is the largest |value| over all its contexts
        assert float(scales[m]) == pytest.approx(max(abs(float(r[m])) for r in run_rows), rel=1e-2)
    tables = (out / "tables.md").read_text()
    assert tables.count("| Sentence | Integrated gradients | Gradient x embedding | " + " | ".join(methods) + " |") == 2


def test_explain_without_methods_writes_no_method_picture(model_path, tmp_path):
    out = tmp_path / "out"
    assert main(["text", "explain", "the stock fell", "--model", str(model_path), "--out", str(out), "--quiet"]) == 0
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    assert not (folder / "methods.png").exists() and (folder / "attribution.html").exists()


# --- known-answer scoring --------------------------------------------------------------------------
def test_curves_start_and_end_where_they_must(lm):
    ids = lm.vocab.encode("the stock market fell".split())
    rankings = {"a": np.array([3, 2, 1, 0]), "b": np.array([0, 1, 2, 3])}
    curves = context_curves(lm.model, ids, 5, rankings, lm.vocab.index["<unk>"])
    for m in rankings:
        for fill in ("zero", "unk"):
            deletion, insertion = curves[m][f"deletion_{fill}"], curves[m][f"insertion_{fill}"]
            assert len(deletion) == len(ids) + 1
            assert deletion[0] == pytest.approx(1.0) and insertion[-1] == pytest.approx(1.0)
            assert deletion[-1] == pytest.approx(insertion[0])               # everything replaced
    # deleting the words in opposite orders passes through the same points
    assert curves["a"]["deletion_zero"][2] == pytest.approx(curves["b"]["insertion_zero"][2])


def test_score_methods_on_literal_contexts_writes_the_table_and_occlusion_wins_top1(model_path, tmp_path, capsys):
    out = tmp_path / "scores"
    assert main(["text", "score-methods", *CONTEXTS[:3], "--methods",
                 "integrated_gradients,saliency,occlusion", "--model", str(model_path),
                 "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "deletion (zero)" in printed and "recency" in printed
    assert {p.name for p in out.iterdir()} == {"scores.csv", "scores.json", "scores.md", "contexts.csv", "curves.png"}
    rows = {r["method"]: r for r in csv.DictReader((out / "scores.csv").open())}
    methods = ["integrated_gradients", "saliency", "occlusion", *CONTROLS]
    assert list(rows) == methods
    saved = json.loads((out / "scores.json").read_text())
    assert saved["contexts"] == 3 and saved["settings"]["methods"] == methods[:3]
    for m in methods:
        for k in METRICS:
            assert float(rows[m][k]) == pytest.approx(saved["scores"][m][k])
        assert f"| {m}" in (out / "scores.md").read_text()
    # known answer: occlusion's top word is, by definition, the one whose zero embedding costs the most
    top1 = {m: float(rows[m]["top1_drop"]) for m in methods}
    assert top1["occlusion"] >= max(top1.values()) - 1e-9
    per_context = list(csv.DictReader((out / "contexts.csv").open()))
    assert len(per_context) == 3 * len(methods)
    assert "Command: `igkit text score-methods" in (out / "scores.md").read_text()
    # the paired comparison with the first method is the per-context difference, averaged
    by = {(r["method"], r["source"]): float(r["deletion_unk"]) for r in per_context}
    diffs = [by["occlusion", s] - by["integrated_gradients", s] for m, s in by if m == "occlusion"]
    assert saved["paired_with"] == "integrated_gradients"
    assert saved["paired"]["occlusion"]["deletion_unk"]["mean_difference"] == pytest.approx(np.mean(diffs))


def test_score_methods_in_python_scores_the_same_contexts(lm):
    scored = score_methods(lm, read_contexts(CONTEXTS[:2]),
                           ["integrated_gradients", "occlusion"])
    assert scored.positions == 2 and scored.methods == ["integrated_gradients", "occlusion", *CONTROLS]
    assert len(scored.curves["occlusion"]["deletion_zero"]) == 21


@pytest.mark.parametrize("argv, words", [
    ([], "nothing to score on"),
    (["the stock fell", "--methods", "grad_cam"], "not meaningful for an LSTM"),
    (["the stock fell", "--methods", "random"], "control"),
    (["the stock fell", "--methods", "no_such_method"], "unknown attribution method"),
    (["--data-dir", "/nonexistent/ptb"], "not found"),
])
def test_score_methods_user_errors_are_one_line(model_path, tmp_path, capsys, argv, words):
    code = main(["text", "score-methods", *argv, "--model", str(model_path), "--out", str(tmp_path / "s"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("igkit: error:") and words in err and "Traceback" not in err


def test_score_methods_on_penn_treebank_validation_positions(shared_data, tmp_path, capsys):
    ptb = shared_data / "ptb"
    if not (ptb / "ptb.valid.txt").is_file():
        pytest.skip(f"{ptb}/ptb.valid.txt not found (the Penn Treebank files)")
    out = tmp_path / "scores"
    assert main(["text", "score-methods", "--data-dir", str(ptb), "--positions", "8", "--methods",
                 "integrated_gradients,occlusion", "--out", str(out), "--quiet"]) == 0
    scores = json.loads((out / "scores.json").read_text())["scores"]
    assert json.loads((out / "scores.json").read_text())["words_per_context"] == 20
    # the shipped model's predictions rest on a few words: both methods find them, a random order does not
    for m in ("integrated_gradients", "occlusion"):
        assert scores[m]["deletion_zero"] < scores["random"]["deletion_zero"]
        assert scores[m]["insertion_zero"] > scores["random"]["insertion_zero"]


def test_rerun_with_other_methods_is_refused_and_overwrite_leaves_no_stale_columns(model_path, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["text", "explain", "the stock fell", "the market rose", "--model", str(model_path), "--out", str(out),
            "--quiet"]
    assert main([*argv, "--methods", "occlusion,saliency"]) == 0
    assert main([*argv, "--methods", "occlusion,saliency"]) == 0            # resumed: kept, tables rebuilt
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["kept"] == 2
    assert list(csv.DictReader((out / "words.csv").open()))[0].keys() >= {"occlusion", "saliency"}
    capsys.readouterr()
    assert main([*argv, "--methods", "smoothgrad"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("igkit: error:") and "--overwrite" in err
    assert main([*argv, "--methods", "smoothgrad", "--overwrite"]) == 0
    header = list(csv.DictReader((out / "words.csv").open()))[0].keys()
    assert "smoothgrad" in header and "occlusion" not in header and "saliency" not in header
    for folder in (p for p in out.iterdir() if p.is_dir()):
        assert json.loads((folder / "explanation.json").read_text())["methods"] == ["smoothgrad"]
        assert "<th>occlusion</th>" not in (folder / "attribution.html").read_text()
