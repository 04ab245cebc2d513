"""Text outputs say what they explain: the shipped model, the next word and whether it is the
model's own prediction, p(input) and p(baseline) with the log-probability beside them, the
baseline; one colour legend; column names that say what they hold; a hint when values print as
zeros; --shared-scale on the run page."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from igkit.outputs import colours
from igkit.cli.main import main
from igkit.plugins.text.render import html_page, notes, terminal_table

SHIPPED = Path(__file__).resolve().parents[1] / "plugins" / "text" / "models"


def _folders(out: Path) -> list[Path]:
    return [out / e["folder"] for e in json.loads((out / "report.json").read_text())["items"]]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    if not any(SHIPPED.glob("*")):
        pytest.skip("the shipped text model is not in plugins/text/models")
    out = tmp_path_factory.mktemp("text") / "run"
    assert main(["text", "explain", "the shareholders claimed more", "the company said", "--out", str(out),
                 "--quiet", "--threads", "1", "--shared-scale"]) == 0
    return out


def test_tables_and_pages_state_model_target_scores_and_baseline(run):
    folder = _folders(run)[0]
    table = (folder / "table.txt").read_text()
    assert "model: shipped PTB small LSTM" in table
    assert "target: than — probability that the next word is 'than' (the model's own prediction)" in table
    assert "(probability), log-probability" in table and "baseline: all-zero word embeddings" in table
    page = (folder / "attribution.html").read_text()
    assert "model: shipped PTB small LSTM" in page and "F(baseline) = " in page
    assert "red: raises the probability of the next word relative to the baseline · blue: lowers it" in page
    assert "each context on its own scale" in page          # an item page: its own scale, said so


def test_columns_say_what_they_hold(run):
    folder = _folders(run)[0]
    assert "Gradient x embedding" in (folder / "table.txt").read_text()
    with open(folder / "words.csv", newline="", encoding="utf-8") as f:
        assert next(csv.reader(f))[:5] == ["position", "word", "oov", "integrated_gradient", "gradient_x_embedding"]


def test_run_page_follows_input_order_and_the_shared_scale(run):
    page = (run / "attribution.html").read_text()
    assert page.index("argument 1") < page.index("argument 2")
    assert "shared by every item of this run (--shared-scale)" in page
    rows = (run / "words.csv").read_text().splitlines()[1:]
    assert [r.split(",")[1] for r in rows] == ["argument 1"] * 4 + ["argument 2"] * 3


def _record(values, scale=False):
    return {"target": "less", "predicted": "than", "score_input": 8e-5, "score_baseline": 7e-6,
            "attribution_sum": sum(values), "completeness_error": 0.0, "path_points": 5, "method": "x",
            "scale": scale, "source": "argument 1",
            "words": [{"position": i, "word": f"w{i}", "oov": False, "integrated_gradient": v, "gradient": v}
                      for i, v in enumerate(values)]}


def test_values_that_print_as_zero_get_a_hint_naming_scale():
    record = _record([3e-5, 1e-4])
    hint = [line for line in notes(record) if "--scale" in line]
    assert hint and "print as 0.0000" in hint[0] and "2 value(s)" in hint[0]
    assert "--scale" in terminal_table(record)
    assert not [line for line in notes(_record([3e-5, 1e-4], scale=True)) if "--scale" in line]
    assert not [line for line in notes(_record([0.2, 0.1])) if "--scale" in line]


def test_html_page_escapes_words_and_uses_the_one_convention():
    record = _record([0.3, -0.2])
    record["words"][0]["word"] = "<unk>"
    page = html_page([record])
    assert "&lt;unk&gt;" in page and "<unk>" not in page.replace("&lt;unk&gt;", "")
    context = page[page.index("<p class='ctx'>"):]
    assert f"background:{colours.RAISES}' title='IG 0.3'" in context          # the largest |IG|: full red
    assert f"background:{colours.signed_colour(-0.2, 0.3)}' title='IG -0.2'" in context   # lowers: blue


def test_text_results_reach_their_source_like_every_domain():
    import igkit

    if not any(SHIPPED.glob("*")):
        pytest.skip("the shipped text model is not in plugins/text/models")
    found = igkit.explain("text", ["the company said"])
    assert found[0].item.source == "argument 1" == found[0].attribution.item.source
