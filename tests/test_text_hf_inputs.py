"""Transformers causal LMs: every bad input gets a clear error and loses nothing; the command line
writes tokens.csv and words.csv per item (memory: test_text_hf_memory.py)."""
from __future__ import annotations

import csv
import json
import re

import pytest
import torch

pytest.importorskip("transformers", reason="needs the transformers extra: pip install 'igkit[transformers]'")

import igkit
from igkit.cli.main import main
from igkit.errors import IGInputError, IgkitWarning, ModelError
from igkit.plugins.text.domain import TextDomain
from igkit.plugins.text.hf_inputs import continuation_ids, tokenize_context
from igkit.plugins.text.hf_model import causal_lm

from hf_models import save_tiny, tiny_gpt2, tiny_tokenizer


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    torch.set_num_threads(1)
    return save_tiny(tmp_path_factory.mktemp("hf") / "tiny", positions=32)


def load(source) -> object:
    return TextDomain().load_model(str(source))


def test_encoder_only_and_seq2seq_folders_are_refused(tmp_path):
    from transformers import BartConfig, BertConfig, BertForMaskedLM

    BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=8)).save_pretrained(tmp_path / "bert")
    with pytest.raises(ModelError, match="not a causal language model"):
        load(tmp_path / "bert")
    BartConfig(vocab_size=50, d_model=8).save_pretrained(tmp_path / "bart")
    with pytest.raises(ModelError, match="encoder-decoder"):
        load(tmp_path / "bart")


def test_weights_that_do_not_match_the_config_are_refused(folder, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(folder, other)
    config = json.loads((other / "config.json").read_text())
    config["n_embd"] = 48
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="do not match"):
        load(other)


def test_remote_code_is_never_run_silently(folder, tmp_path):
    import shutil

    other = tmp_path / "remote"
    shutil.copytree(folder, other)
    config = json.loads((other / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="--trust-remote-code"):
        load(other)


def test_a_hub_id_that_is_not_cached_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelError, match="never downloads"):
        load("nobody-here/no-such-model")


def test_tokenizer_without_offsets_half_precision_and_split_models_are_refused():
    tokenizer = tiny_tokenizer()

    class SlowTokenizer:
        is_fast = False

    with pytest.raises(IGInputError, match="offsets"):
        causal_lm(tiny_gpt2(tokenizer), SlowTokenizer())
    with pytest.raises(IGInputError, match="half precision"):
        causal_lm(tiny_gpt2(tokenizer).half(), tokenizer)
    split = tiny_gpt2(tokenizer)
    split.hf_device_map = {"transformer.h.0": "cpu", "transformer.h.1": "disk"}
    with pytest.raises(IGInputError, match="one device"):
        causal_lm(split, tokenizer)


def test_a_model_in_training_mode_is_put_in_eval_mode_with_a_warning():
    tokenizer = tiny_tokenizer()
    model = tiny_gpt2(tokenizer).train()
    with pytest.warns(IgkitWarning, match="training mode"):
        lm = causal_lm(model, tokenizer)
    assert not lm.model.training


def test_a_target_that_tokenizes_to_nothing_is_an_input_error():
    lm = causal_lm(tiny_gpt2(tiny_tokenizer()), tiny_tokenizer())

    class Empty:
        def __call__(self, text, **_):
            return {"input_ids": []}

    lm.tokenizer = Empty()
    with pytest.raises(IGInputError, match="tokenizes to nothing"):
        continuation_ids(lm, "the stock", "\u200b")


def test_context_longer_than_the_positions_names_last_tokens(folder):
    lm = load(folder)
    long = " ".join(["the stock market fell"] * 20)
    with pytest.raises(IGInputError, match="--last-tokens"):
        tokenize_context(lm, long)
    found = igkit.explain("text", [long, "the stock"], model=lm, last_tokens=12, integration={"steps": 8})
    assert [e.context.truncated_from is not None for e in found] == [True, False]
    assert len(found[0].context.ids) == 12
    plain = igkit.explain("text", [long, "the stock"], model=lm, integration={"steps": 8})
    assert len(plain) == 1 and "--last-tokens" in plain.skipped[0].reason


def test_the_lstm_refuses_transformers_options_by_name():
    found = igkit.explain("text", ["the stock"], contrast="market")
    assert not found.explanations and "--contrast" in found.skipped[0].reason


def test_command_line_writes_tokens_and_words_and_keeps_good_items(folder, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["text", "explain", "the stock market fell ,", "   ", "the shareholders claimed more",
            "--model", str(folder), "--out", str(out), "--quiet", "--threads", "1", "--steps", "16"]
    assert main(argv) == 1
    report = json.loads((out / "report.json").read_text())
    assert [e["status"] for e in report["items"]] == ["written", "skipped", "written"]
    folders = [out / e["folder"] for e in report["items"] if e.get("folder")]
    with open(folders[0] / "tokens.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["position", "token", "word_index", "word", "attribution"]
    with open(folders[0] / "words.csv", newline="") as fh:
        words = list(csv.DictReader(fh))
    assert [w["word"] for w in words] == ["the", "stock", "market", "fell", ","]
    summary = json.loads((folders[0] / "summary.json").read_text())
    total = sum(float(r["attribution"]) for r in rows)
    assert total == pytest.approx(summary["attribution_sum"], abs=1e-5)
    assert (out / "tokens.csv").is_file() and (out / "words.csv").is_file()
    capsys.readouterr()
    assert main(argv) == 1  # resumed: both written items kept
    assert json.loads((out / "report.json").read_text())["counts"]["kept"] == 2


def test_every_output_says_what_it_explains(folder, tmp_path):
    """The caption other domains carry (igkit.outputs.explains) on the table, the Markdown, the item's
    and the run's page: the model and its weights digest, the target and its meaning, F(input) and
    F(baseline) on the log-probability scale, and the baseline."""
    out = tmp_path / "out"
    assert main(["text", "explain", "the stock market fell", "--model", str(folder), "--baseline", "eos",
                 "--contrast", "shares of", "--out", str(out), "--quiet", "--threads", "1", "--steps", "8"]) == 0
    run = json.loads((out / "run.json").read_text())
    item = out / json.loads((out / "report.json").read_text())["items"][0]["folder"]
    summary = json.loads((item / "summary.json").read_text())
    lines = summary["explains"]["lines"]
    assert lines[0] == f"model: {folder} (weights {run['model_fingerprint'][:10]})"
    assert lines[1].startswith(f"target: {summary['target']} — summed log-probability of") and "' shares of'" in lines[1]
    assert lines[2] == (f"F(input) = {summary['score_input']:.4g} (log-probability); F(baseline) = "
                        f"{summary['score_baseline']:.4g} (log-probability); baseline: the eos token's "
                        f"embedding at every position (positions kept)")
    import html
    for page in (item / "table.txt", item / "table.md", item / "attribution.html", out / "attribution.html"):
        text = page.read_text()
        escaped = html.escape if page.suffix in (".md", ".html") else str
        assert all(escaped(line) in text for line in lines[:3]), page.name


def test_an_unknown_model_is_one_error_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    assert main(["text", "explain", "the stock", "--model", "nobody-here/no-such-model",
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("igkit: error:") and "Traceback" not in err


@pytest.mark.parametrize("method, why", [("guided_backprop", "GELU/SiLU activations are not ReLUs"),
                                         ("grad_cam", "hidden states mix every earlier token")])
def test_methods_refused_for_a_transformers_model_say_why_for_it(folder, tmp_path, capsys, method, why):
    """Refused before any work (the model is not loaded yet: the reason names both model kinds), and
    where a batch reaches the method, by the transformers model's own name."""
    from igkit.plugins.text.contexts import ContextSpec
    from igkit.plugins.text.hf_domain import prepare_causal_item

    code = main(["text", "explain", "the stock", "--model", str(folder), "--methods", method,
                 "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "With a transformers causal LM" in err and why in err and "Traceback" not in err
    lm = load(folder)
    with pytest.raises(IGInputError, match=f"transformers causal LM.*{why}"):
        igkit.explain("text", ["the stock"], model=lm, methods=[method])
    prepared = prepare_causal_item(lm, ContextSpec("the stock"))
    with pytest.raises(IGInputError, match=f"^{re.escape(str(folder))} is a transformers causal LM: .*{why}"):
        TextDomain().method_options(method, prepared)
