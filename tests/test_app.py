"""The web app's functions, inputs → outputs, without a browser (``test_app_browser.py`` drives one).

The app must run the one explain path: its item folder is the CLI's, byte for byte where the
content allows; bad input comes back as a message; server paths are never read; one model call
runs at a time per model.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import igkit
from igkit.app.service import DomainService, check_text, names_server_path
from igkit.app.views import (AppView, Panels, find_view, generic_map_picture, read_file_view,
                             score_curve_picture, summary_markdown)
from igkit.cli.main import main

THIRD_PARTY = Path(__file__).parent / "thirdparty"


def _toy_module():
    spec = importlib.util.spec_from_file_location("toy_app_plugin", THIRD_PARTY / "toy_igkit_plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def toy():
    return _toy_module().NumbersDomain()


@pytest.fixture
def service(toy, tmp_path):
    return DomainService(toy, workdir=tmp_path / "app", upload_roots=[tmp_path / "uploads"])


# --- the one explain path --------------------------------------------------------------------------
def test_a_result_is_the_item_folder_the_cli_writes(service, toy, tmp_path):
    result = service.run("1,2,3", steps=8)
    assert result.ok, result.error
    cli = igkit.explain_to_folder(toy, ["1,2,3"], tmp_path / "cli", integration={"steps": 8})
    [folder] = cli.folders
    assert result.folder.name == folder.name  # same <name>-<hash>
    app_files = sorted(p.name for p in result.folder.iterdir())
    assert app_files == sorted(p.name for p in folder.iterdir())
    app_summary = json.loads((result.folder / "summary.json").read_text())
    cli_summary = json.loads((folder / "summary.json").read_text())
    for summary in (app_summary, cli_summary):
        summary.pop("seconds")
        summary["item"].pop("source")
    assert app_summary == cli_summary  # same run_id: same model, settings and integration
    assert (result.folder / "bars.txt").read_text() == (folder / "bars.txt").read_text()
    with zipfile.ZipFile(result.zip_path) as archive:
        assert sorted(Path(n).name for n in archive.namelist() if not n.endswith("/")) == app_files


def test_summary_numbers_are_shown(service):
    result = service.run("1,2,3")
    text = result.summary_text
    assert "Σ attributions = 1.5" in text and "completeness error 0.00%" in text
    assert result.summary["attribution_sum"] == pytest.approx(2 - 2 + 1.5)


def test_bad_input_is_a_message_and_the_next_good_input_works(service):
    bad = service.run("1,x,3")
    assert not bad.ok and "not a list of comma-separated numbers" in bad.error
    assert bad.token is None and bad.folder is None
    good = service.run("0,0,4")
    assert good.ok and good.summary["attribution_sum"] == pytest.approx(2.0)


def test_an_unexpected_failure_is_reported_and_the_app_keeps_serving(service, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(service.domain, "render", broken)
    result = service.run("1,2,3")
    assert not result.ok and "RuntimeError: boom" in result.error
    monkeypatch.undo()
    assert service.run("1,2,3").ok


def test_extra_methods_and_integration_options(service):
    result = service.run("1,2,3", methods=["saliency", "grad_x_input"], steps=4)
    assert result.ok, result.error
    assert result.summary["methods"] == ["saliency", "grad_x_input"] and result.summary["steps"] == 4
    # every method drawn the same way as integrated gradients, IG first
    assert [caption for _, caption in result.panels.methods] == ["integrated gradients", "saliency", "grad_x_input"]
    assert all(p.ndim == 3 and p.shape[2] == 3 for p, _ in result.panels.methods)
    assert not service.run("1,2,3", methods=["no_such_method"]).ok
    assert "between 2 and 2048" in service.run("1,2,3", steps=1).error
    assert "tolerance" in service.run("1,2,3", tolerance=3).error


def test_unknown_model_choice_and_long_targets_are_refused(service):
    assert "unknown model" in service.run("1,2,3", model="something else").error
    assert "at most 200" in service.run("1,2,3", target="x" * 201).error


def test_model_sources_from_the_command_line_are_the_choices(toy, tmp_path):
    service = DomainService(toy, ["1,1,1", "2,0,0"], workdir=tmp_path)
    assert [c.label for c in service.choices] == ["1,1,1", "2,0,0"]
    result = service.run("1,2,3", model="2,0,0")
    assert result.summary["attribution_sum"] == pytest.approx(2.0)


# --- inputs: size limits, never a server path ------------------------------------------------------
def test_text_is_size_limited_and_never_names_a_server_file(tmp_path, monkeypatch):
    assert check_text("  CCO ", 10) == "CCO"
    with pytest.raises(igkit.IGInputError, match="at most 10"):
        check_text("x" * 11, 10)
    with pytest.raises(igkit.IGInputError, match="empty"):
        check_text("   ", 10)
    secret = tmp_path / "secret.csv"
    secret.write_text("smiles\nCCO\n")
    monkeypatch.chdir(tmp_path)
    for text in (str(secret), "secret.csv", "*.csv", "-", str(tmp_path)):
        assert names_server_path(text), text
        with pytest.raises(igkit.IGInputError, match="never reads server files"):
            check_text(text, 1000)
    assert not names_server_path("CC(=O)O/C=C/F")


def test_uploads_are_read_only_from_the_upload_folder(tmp_path):
    from PIL import Image

    from igkit.app.service import check_upload

    uploads, out = tmp_path / "uploads", tmp_path / "out"
    uploads.mkdir()
    out.mkdir()
    Image.new("RGB", (20, 10), "red").save(uploads / "pic one.png")
    elsewhere = tmp_path / "elsewhere.png"
    Image.new("RGB", (20, 10), "red").save(elsewhere)
    copied = Path(check_upload(uploads / "pic one.png", [uploads], out))
    assert copied.parent == out and copied.name == "pic_one.png"
    with Image.open(copied) as image:
        assert image.size == (20, 10) and image.mode == "RGB"
    with pytest.raises(igkit.IGInputError, match="uploaded files only"):
        check_upload(elsewhere, [uploads], out)
    with pytest.raises(igkit.IGInputError, match="uploaded files only"):
        check_upload(uploads / ".." / "elsewhere.png", [uploads], out)
    (uploads / "notes.png").write_text("not a picture")
    with pytest.raises(igkit.IGInputError, match="not a picture"):
        check_upload(uploads / "notes.png", [uploads], out)
    with pytest.raises(igkit.IGInputError, match="no picture"):
        check_upload(None, [uploads], out)


def test_uploads_are_size_limited(tmp_path, monkeypatch):
    from PIL import Image

    from igkit.app import service as service_module

    uploads = tmp_path
    Image.new("RGB", (300, 300), "blue").save(uploads / "big.png")
    monkeypatch.setattr(service_module, "MAX_PIXELS", 100 * 100)
    with pytest.raises(igkit.IGInputError, match="300×300 pixels"):
        service_module.check_upload(uploads / "big.png", [uploads], uploads)
    monkeypatch.setattr(service_module, "MAX_UPLOAD_BYTES", 10)
    with pytest.raises(igkit.IGInputError, match="MB"):
        service_module.check_upload(uploads / "big.png", [uploads], uploads)


# --- the α slider, results kept briefly --------------------------------------------------------------
def test_alpha_gives_the_score_curve_and_the_gradient_there(service):
    result = service.run("1,2,3", steps=6)
    curve, gradient = service.interior(result.token, 0.25)
    assert curve.ndim == 3 and curve.shape[2] == 3 and gradient.ndim == 3
    with pytest.raises(igkit.IGInputError, match="between 0 and 1"):
        service.interior(result.token, 1.5)
    with pytest.raises(igkit.IGInputError, match="run an item first"):
        service.interior("not-a-token", 0.5)


def test_old_results_are_dropped(service, monkeypatch):
    from igkit.app import service as service_module

    monkeypatch.setattr(service_module, "KEEP_RESULTS", 2)
    first = service.run("1,0,0")
    service.run("2,0,0")
    service.run("3,0,0")
    assert not first.folder.exists()
    with pytest.raises(igkit.IGInputError):
        service.result(first.token)


# --- one model call at a time per model -------------------------------------------------------------
def test_concurrent_requests_run_one_at_a_time_and_keep_their_own_results(toy, tmp_path, monkeypatch):
    service = DomainService(toy, workdir=tmp_path)
    active, most = [0], [0]
    prepare = type(toy).prepare

    def slow_prepare(self, model, item, **settings):
        active[0] += 1
        most[0] = max(most[0], active[0])
        time.sleep(0.05)
        active[0] -= 1
        return prepare(self, model, item, **settings)

    monkeypatch.setattr(type(toy), "prepare", slow_prepare)
    results: dict[int, object] = {}
    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, service.run(f"{k},0,0", steps=4)))
               for k in range(1, 6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1
    for k, result in results.items():
        assert result.ok and result.summary["attribution_sum"] == pytest.approx(2.0 * k)


# --- views --------------------------------------------------------------------------------------------
def test_a_third_party_domain_gets_the_generic_view(toy, service):
    assert type(find_view(toy)) is AppView
    result = service.run("1,2,3")
    assert [t.title for t in result.panels.tables] == ["importance_input0.csv"]
    rows = result.panels.tables[0].rows
    assert [int(r[0]) for r in rows] == [0, 1, 2]
    assert [float(r[1]) for r in rows] == pytest.approx([2.0, -2.0, 1.5], abs=1e-5)


def test_a_domain_may_bring_its_own_view(toy, tmp_path):
    class Mine(AppView):
        title = "mine"

        def panels(self, explanation, folder, summary):
            return Panels(notes=[(folder / "bars.txt").read_text().strip()])

    domain = type("WithView", (type(toy),), {"app_view": lambda self: Mine(self)})()
    service = DomainService(domain, workdir=tmp_path)
    assert service.view.title == "mine"
    assert service.run("1,2,3").panels.notes == ["2.000 -2.000 1.500"]


def test_a_failing_view_falls_back_to_the_files(toy, tmp_path):
    class Broken(AppView):
        def panels(self, explanation, folder, summary):
            raise KeyError("words")

    service = DomainService(toy, view=Broken(toy), workdir=tmp_path)
    result = service.run("1,2,3")
    assert result.ok and any("view failed" in n for n in result.panels.notes)


def test_files_are_read_for_the_page(tmp_path):
    (tmp_path / "a.csv").write_text("\ufeffx,y\r\n1,2\r\n")
    (tmp_path / "b.json").write_text('{"k": [1, 2]}')
    (tmp_path / "c.txt").write_text("hello")
    kind, table = read_file_view(tmp_path / "a.csv")
    assert kind == "table" and table.headers == ["x", "y"] and table.rows == [["1", "2"]]
    assert read_file_view(tmp_path / "b.json") == ("json", {"k": [1, 2]})
    assert read_file_view(tmp_path / "c.txt") == ("text", "hello")


def test_pictures_of_values():
    image_like = generic_map_picture((torch.randn(1, 3, 16, 16),), "image")
    vector = generic_map_picture((torch.randn(1, 5),), "bars", labels=list("abcde"))
    curve = score_curve_picture([0, 0.5, 1], [0.0, 0.3, 1.0], 0.5)
    for picture in (image_like, vector, curve):
        assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3


def test_summary_markdown_says_when_integration_did_not_converge():
    text = summary_markdown({"target": "cat", "score_input": 0.9, "score_baseline": 0.1,
                             "attribution_sum": 0.7, "completeness_error": 0.125,
                             "completeness_delta": -0.1, "converged": False, "steps": 1024,
                             "method": "adaptive_simpson", "seconds": 1.0})
    assert "12.500%" in text and "not converged" in text and "cat" in text


# --- built-in domains' views ---------------------------------------------------------------------------
def test_text_view_offers_next_words_and_explains_the_chosen_one(tmp_path, monkeypatch):
    domain = igkit.get_domain("text")
    loads = []
    load = domain.load_model
    monkeypatch.setattr(domain, "load_model", lambda source, **settings: loads.append(source) or load(source))
    service = DomainService(domain, workdir=tmp_path)
    result = service.run("the shareholders claimed more")
    assert result.ok, result.error
    panels = result.panels
    assert list(panels.label)[0] == "than" and panels.targets[0] == "than"
    assert sum(panels.label.values()) <= 1.0
    words = [text for text, score in panels.highlight if score is not None]
    assert words == ["the", "shareholders", "claimed", "more"]
    assert max(abs(score) for _, score in panels.highlight if score is not None) == pytest.approx(1.0)
    assert any(note.startswith("**The paper's table**") and "| more |" in note for note in panels.notes)
    other = service.run("the shareholders claimed more", target="of")
    assert other.summary["target"] == "of"
    assert other.summary["score_input"] == pytest.approx(panels.label["of"], rel=1e-4)
    assert "empty" in service.run("  ").error
    assert "zzzz" in service.run("the shareholders claimed more", target="zzzz").error
    assert loads == [None]  # another target reuses the loaded model


def test_molecules_view_shows_heat_map_matrix_accounting_and_findings(tmp_path):
    service = DomainService(igkit.get_domain("molecules"), workdir=tmp_path)
    result = service.run("c1ccccc1O", steps=16)
    assert result.ok, result.error
    captions = [caption for _, caption in result.panels.pictures]
    assert captions[0].startswith("atom heat map") and captions[1].startswith("pair matrix")
    accounting = result.panels.tables[0]
    assert [row[0] for row in accounting.rows][:3] == ["F(molecule)", "F(baseline)", "F(molecule) − F(baseline)"]
    assert any(note.startswith("**Dead features:**") for note in result.panels.notes)
    curve, gradient = service.interior(result.token, 0.5)
    assert gradient.ndim == 3
    assert "invalid SMILES" in service.run("C1CC").error


def test_vision_view_never_presents_random_weights_as_a_classifier(tmp_path, monkeypatch):
    from igkit.plugins.vision import app_view

    view = app_view.app_view(igkit.get_domain("vision"))
    monkeypatch.setattr(app_view, "imagenet_weights_file", lambda arch: tmp_path / "missing.pth")
    choices = view.models([])
    assert [c.label for c in choices] == ["digits · trained (scikit-learn digits, test accuracy 1.0000)",
                                          "googlenet · random weights (untrained: not a classifier)"]
    assert choices[0].source == "digits" and "**Trained**" in choices[0].note
    assert dict(choices[1].settings) == {"weights": "random"}
    assert "not available on this machine" in choices[1].note and "not available" in view.intro
    (tmp_path / "cached.pth").write_bytes(b"")
    monkeypatch.setattr(app_view, "imagenet_weights_file", lambda arch: tmp_path / "cached.pth")
    labels = [c.label for c in app_view.app_view(igkit.get_domain("vision")).models(["resnet18"])]
    assert labels == ["resnet18 · ImageNet weights", "resnet18 · random weights (untrained: not a classifier)"]
    assert view.settings("tabby")["label"] == "tabby"


@pytest.mark.slow
def test_vision_view_runs_an_uploaded_picture_with_random_weights(tmp_path):
    from PIL import Image

    domain = igkit.get_domain("vision")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    Image.new("RGB", (96, 80), (120, 60, 30)).save(uploads / "brown.png")
    service = DomainService(domain, workdir=tmp_path / "app", upload_roots=[uploads])
    random_choice = next(c.label for c in service.choices if "random" in c.label)
    service.view.settings = lambda target: {"frames": 2, "curve_points": 2, "layers": [], "size": 64}
    result = service.run(upload=str(uploads / "brown.png"), model=random_choice, steps=4)
    assert result.ok, result.error
    assert "UNTRAINED" in result.panels.label_title and len(result.panels.label) == 5
    assert any("not a classifier" in note for note in result.panels.notes)
    assert [caption for _, caption in result.panels.pictures][:2] == [
        "integrated gradients (the paper's rendering)", "integrated gradients over the picture: red raises, blue lowers the score; outlined: the top 10 % of pixels"]
    assert "the app reads uploaded files only" in service.run(upload="/etc/hostname", model=random_choice).error


# --- the command -----------------------------------------------------------------------------------------
def test_app_command_parses_models_and_says_when_gradio_is_missing(monkeypatch, capsys):
    from igkit.app import command

    assert command.parse_models(["vision=random", "vision=resnet18", "text=m.safetensors"]) == {
        "vision": ["random", "resnet18"], "text": ["m.safetensors"]}
    with pytest.raises(igkit.IGInputError, match="DOMAIN=SOURCE"):
        command.parse_models(["vision"])
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    assert main(["app", "--port", "0"]) == 2
    err = capsys.readouterr().err  # (a plugin that fails to load adds a warning line before it)
    assert any(line.startswith("igkit: error: the web app needs Gradio: pip install 'igkit[app]'")
               for line in err.splitlines()), err
    assert "Traceback" not in err


def test_app_binds_to_localhost_unless_told():
    from igkit.cli.main import build_parser

    args = build_parser().parse_args(["app"])
    assert args.host == "127.0.0.1"


def test_make_services_refuses_unknown_domains(tmp_path):
    from igkit.app.server import make_services

    with pytest.raises(igkit.IGInputError, match="no installed domain 'nope'"):
        make_services(tmp_path, ["nope"])
    with pytest.raises(igkit.IGInputError, match="has no tab"):
        make_services(tmp_path, ["text"], {"vision": ["random"]})


def test_help_does_not_import_gradio():
    code = ("import sys; sys.argv=['igkit','--help']\nfrom igkit.cli.main import main\ntry: main()\n"
            "except SystemExit: pass\nprint('gradio' in sys.modules, 'igkit.app.tabs' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split()[-2:] == ["False", "False"], done.stdout + done.stderr


def test_the_page_builds_with_a_tab_per_domain(toy, tmp_path):
    gr = pytest.importorskip("gradio")
    from igkit.app.server import build_app
    from igkit.app.tabs import result_updates

    services = [DomainService(toy, workdir=tmp_path / "a")]
    demo = build_app(services)
    assert isinstance(demo, gr.Blocks)
    ok = result_updates(gr, services[0], services[0].run("1,2,3"))
    bad = result_updates(gr, services[0], services[0].run("x"))
    assert len(ok) == len(bad) == 14
    assert bad[0] == "<div class='igkit-error' role='alert'>⚠️ &#x27;x&#x27; is not a list of comma-separated numbers.</div>"
    assert ok[0].startswith("Done in")


def test_method_choices_leave_out_what_a_domain_declares_unavailable(toy):
    from igkit.app.tabs import method_choices

    everything = method_choices()
    assert "saliency" in everything and "integrated_gradients" not in everything
    domain = type("NoSaliency", (type(toy),), {"unavailable_methods": {"saliency": "not here"}})()
    assert method_choices(domain) == [m for m in everything if m != "saliency"]


def test_the_integrand_at_alpha_averages_to_the_attribution_with_several_baselines():
    from igkit.app.service import path_values
    from igkit.domain import Prepared

    x = torch.tensor([[1.0, -2.0, 0.5]])
    baselines = torch.stack([torch.zeros(1, 3), torch.full((1, 3), 0.3)])  # [K=2, B=1, 3]
    prepared = Prepared(name="x", inputs=x, forward=lambda v: (v ** 3).sum(-1), baselines=baselines)
    alphas = (torch.arange(2000, dtype=torch.float64) + 0.5) / 2000  # midpoint rule
    mean = sum(path_values(prepared, float(a), integrand=True)[0] for a in alphas) / len(alphas)
    expected = igkit.integrated_gradients(prepared.forward, x, baselines, steps=64).attributions
    torch.testing.assert_close(mean, expected, atol=1e-4, rtol=1e-4)
    gradient = path_values(prepared, 1.0)[0]
    torch.testing.assert_close(gradient, 3 * x ** 2)


# --- issue 18: the app as a real tool ------------------------------------------------------------------
def test_user_strings_are_escaped_in_every_markdown_the_page_shows():
    from igkit.app.html import error_html, escape_markdown

    assert escape_markdown("the <unk> said") == "the &lt;unk&gt; said"
    assert escape_markdown("a*b_c [x](y) $5 | ~") == r"a\*b\_c \[x\](y) \$5 \| \~"
    assert escape_markdown("# not a heading") == r"\# not a heading"
    assert escape_markdown("12. not a list\nsecond line") == r"12\. not a list second line"
    text = summary_markdown({"target": "<unk>", "score_input": 0.5, "score_baseline": 0.1, "attribution_sum": 0.4,
                             "completeness_error": 0.0, "steps": 8, "method": "gausslegendre", "seconds": 0.1})
    assert "**Explained:** &lt;unk&gt;" in text and "<unk>" not in text
    explained = summary_markdown({"explains": {"lines": ["target: <b>x</b> — the word <unk>"]}, "steps": 3,
                                  "method": "m", "seconds": 0.0}, {"baseline": "zero"})
    assert "Target: &lt;b&gt;x&lt;/b&gt; — the word &lt;unk&gt;" in explained and "baseline zero" in explained
    assert error_html("bad <input>") == "<div class='igkit-error' role='alert'>⚠️ Bad &lt;input&gt;.</div>"


def test_a_warning_with_markup_reaches_the_page_whole_and_escaped(toy, tmp_path, monkeypatch):
    prepare = type(toy).prepare

    def warning_prepare(self, model, item, **settings):
        import warnings

        warnings.warn("the context word <unk> is read as <unk>: it is not in the vocabulary", igkit.IgkitWarning)
        return prepare(self, model, item, **settings)

    monkeypatch.setattr(type(toy), "prepare", warning_prepare)
    result = DomainService(toy, workdir=tmp_path).run("1,2,3")
    assert result.panels.notes[0] == ("⚠️ the context word &lt;unk&gt; is read as &lt;unk&gt;: it is not in the "
                                      "vocabulary")


def test_the_text_tab_shows_a_context_with_unk_as_text(tmp_path):
    service = DomainService(igkit.get_domain("text"), workdir=tmp_path)
    result = service.run("the <unk> said more", methods=["occlusion"])
    assert result.ok, result.error
    table = next(note for note in result.panels.notes if note.startswith("**The paper's table**"))
    assert "| &lt;unk&gt;\\* |" in table and "<unk>" not in table
    assert [text for text, score in result.panels.highlight if score is not None][1] == "<unk>*"  # a component, not HTML
    assert [c for _, c in result.panels.methods] == ["integrated gradients", "occlusion"]  # drawn over the words


def test_a_file_that_is_not_a_picture_gets_a_sentence(tmp_path):
    from igkit.app.service import check_upload

    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(igkit.IGInputError) as caught:
        check_upload(tmp_path / "notes.txt", [tmp_path], tmp_path)
    assert str(caught.value) == ("the file you uploaded (notes.txt) is not a picture this app can read: upload a "
                                 "PNG, JPEG, GIF, BMP, TIFF or WebP image")


def test_methods_are_drawn_on_the_molecule_side_by_side(tmp_path):
    from igkit.app.html import picture_grid

    service = DomainService(igkit.get_domain("molecules"), workdir=tmp_path)
    result = service.run("c1ccccc1O", methods=["occlusion"], steps=16)
    assert result.ok, result.error
    assert [c for _, c in result.panels.methods] == ["integrated gradients", "occlusion"]
    grid = picture_grid(result.panels.methods, wide=True)
    assert grid.count("<figure>") == 2 and grid.count("src='data:image/png;base64,") == 2
    assert "<figcaption>occlusion</figcaption>" in grid


def test_baseline_and_score_choices_come_from_the_domain_and_change_the_result(tmp_path):
    from igkit.app.choices import path_choices

    molecules = igkit.get_domain("molecules")
    offered = {c.setting: c.options for c in path_choices(molecules)}
    assert offered == {"baseline": ("zero", "carbon", "zero+carbon"), "score": ("probability", "logit")}
    assert {c.setting for c in path_choices(igkit.get_domain("vision"))} == {"baseline", "score"}
    service = DomainService(molecules, workdir=tmp_path)
    zero = service.run("c1ccccc1O", steps=16, choices={"baseline": "zero", "score": "logit"})
    carbon = service.run("c1ccccc1O", steps=16, choices={"baseline": "carbon", "score": "logit"})
    probability = service.run("c1ccccc1O", steps=16, choices={"baseline": "zero", "score": "probability"})
    assert zero.summary["score_input"] == pytest.approx(carbon.summary["score_input"])
    assert zero.summary["score_baseline"] != pytest.approx(carbon.summary["score_baseline"])
    assert 0 < probability.summary["score_input"] < 1 < zero.summary["score_input"]  # logit of a confident "yes"
    assert "baseline carbon, score logit" in carbon.summary_text
    assert "is not a baseline this domain offers" in service.run("CCO", choices={"baseline": "noise"}).error
    text = DomainService(igkit.get_domain("text"), workdir=tmp_path / "t")
    assert text.path_choices == [] and "zero" in text.view.path_note  # no choice: the tab says what is used


def test_a_request_over_its_time_budget_stops_with_a_sentence_and_frees_the_model(toy, tmp_path, monkeypatch):
    prepare = type(toy).prepare

    def slow_prepare(self, model, item, **settings):
        prepared = prepare(self, model, item, **settings)
        forward = prepared.forward

        def slow(v):
            time.sleep(0.02)
            return forward(v)

        prepared.forward, prepared.batch_size = slow, 4  # 128 passes of 20 ms for 512 steps
        return prepared

    service = DomainService(toy, workdir=tmp_path, budget_s=60)
    monkeypatch.setattr(type(toy), "prepare", slow_prepare)
    reports = []
    result = service.run("1,2,3", steps=512, budget_s=0.2, report=lambda f, t: reports.append((f, t)),
                         methods=[])
    assert not result.ok
    assert "went over the app's time budget of 0.2 s per request" in result.error
    assert "igkit app --time-budget SECONDS" in result.error
    assert reports[-1][1].startswith("integrating: 0.")  # the stage it was stopped in
    assert list(tmp_path.glob("run-*")) == []  # nothing half-written is kept
    reports.clear()
    assert service.run("1,2,3", steps=16, report=lambda f, t: reports.append((f, t))).ok
    assert any(t.startswith("integrating:") and "path points" in t for _, t in reports)  # progress per pass
    assert all(0 <= f <= 1 for f, _ in reports)
    monkeypatch.undo()
    assert service.run("1,2,3", budget_s=1000).ok  # the model lock was released; 1000 s is capped at 60


def test_the_budget_stops_a_request_inside_a_pass_that_outlasts_it(toy, tmp_path, monkeypatch):
    """One pass of a big model on a busy machine can outlast the whole budget: the request stops
    at the next layer of that pass, not when the pass ends (here a pass runs 40 slow layers)."""
    import torch

    layers_run = []

    class SlowLayer(torch.nn.Module):
        def forward(self, v):
            layers_run.append(1)
            time.sleep(0.02)
            return v

    slow_layers = torch.nn.Sequential(*[SlowLayer() for _ in range(40)])
    prepare = type(toy).prepare

    def slow_prepare(self, model, item, **settings):
        prepared = prepare(self, model, item, **settings)
        forward = prepared.forward
        prepared.forward = lambda v: forward(slow_layers(v))
        return prepared

    service = DomainService(toy, workdir=tmp_path, budget_s=60)
    monkeypatch.setattr(type(toy), "prepare", slow_prepare)
    result = service.run("1,2,3", steps=16, budget_s=0.1, methods=[])
    assert "while integrating: it went over the app's time budget of 0.1 s" in result.error, result.error
    assert 0 < len(layers_run) < 40  # stopped inside the first pass
    monkeypatch.undo()
    layers_run.clear()
    assert service.run("1,2,3", steps=16).ok  # the model is free again
    slow_layers(torch.zeros(1))  # and outside a request the hook stops nothing
    assert len(layers_run) == 40


def test_a_text_model_folder_is_passed_to_the_domain_as_the_model_source(tmp_path, monkeypatch):
    domain = igkit.get_domain("text")
    sources = []
    load = domain.load_model
    monkeypatch.setattr(domain, "load_model", lambda source, **settings: sources.append(source) or load(None))
    service = DomainService(domain, workdir=tmp_path / "app")
    assert service.choices[0].label.startswith("shipped LSTM")
    assert "no folder" in service.run("the cat", custom={"folder": str(tmp_path / "missing")}).error
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert "has no config.json" in service.run("the cat", custom={"folder": str(folder)}).error
    (folder / "config.json").write_text("{}")
    result = service.run("the shareholders claimed more", custom={"folder": str(folder)})
    assert result.ok, result.error
    assert sources == [str(folder)] and result.choice.label == "transformers folder my-model"


def test_the_image_tab_takes_uploaded_weights_and_refuses_server_paths(tmp_path):
    import shutil

    from igkit.plugins.vision import digits

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    shutil.copy(digits.weights_file(), uploads / "mine.safetensors")
    shutil.copy(digits.models_dir() / "digit_test_7.png", uploads / "seven.png")
    service = DomainService(igkit.get_domain("vision"), workdir=tmp_path / "app", upload_roots=[uploads])
    service.view.settings = lambda target: {"frames": 2, "curve_points": 2, "layers": []}
    refused = service.run(upload=str(uploads / "seven.png"), custom={"architecture": "digits",
                                                                      "weights": str(digits.weights_file())})
    assert refused.error == "the app reads uploaded files only, not paths on the server"
    assert "needs its weights file" in service.run(upload=str(uploads / "seven.png"),
                                                   custom={"architecture": "digits"}).error
    result = service.run(upload=str(uploads / "seven.png"), steps=8,
                         custom={"architecture": "digits", "weights": str(uploads / "mine.safetensors")})
    assert result.ok, result.error
    assert result.choice.label == "your digits weights (mine.safetensors)"
    assert list(result.panels.label)[0] == "7" and "cannot tell whether" in result.choice.note
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    (uploads / "names.txt").write_text("\n".join(names) + "\n")
    named = service.run(upload=str(uploads / "seven.png"), steps=8,
                        custom={"architecture": "digits", "weights": str(uploads / "mine.safetensors"),
                                "labels": str(uploads / "names.txt")})
    assert named.ok, named.error
    assert list(named.panels.label)[0] == "seven" and "class names from your file" in named.choice.note
    (uploads / "short.txt").write_text("a\nb\n")
    short = service.run(upload=str(uploads / "seven.png"), custom={"architecture": "digits",
                                                                    "weights": str(uploads / "mine.safetensors"),
                                                                    "labels": str(uploads / "short.txt")})
    assert "has 2 class names but the model has 10 classes" in short.error


@pytest.mark.slow
def test_the_default_image_model_is_trained_and_reads_a_test_digit(tmp_path):
    from igkit.plugins.vision import digits

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "three.png").write_bytes((digits.models_dir() / "digit_test_3.png").read_bytes())
    service = DomainService(igkit.get_domain("vision"), workdir=tmp_path / "app", upload_roots=[uploads])
    result = service.run(upload=str(uploads / "three.png"), methods=["saliency"])
    assert result.ok, result.error
    assert result.choice.source == "digits" and result.panels.label_title == "top-5 predictions"
    assert list(result.panels.label)[0] == "3" and result.panels.label["3"] > 0.9
    assert not any("not a classifier" in note for note in result.panels.notes)
    assert [c for _, c in result.panels.methods] == ["integrated gradients", "saliency"]  # on the image
    assert all(p.shape[0] >= 256 for p, _ in result.panels.methods)  # 32×32 digits enlarged for the page


@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_the_app_removes_its_temporary_files_when_stopped(signal_name, tmp_path):
    import os
    import re
    import signal
    import socket

    pytest.importorskip("gradio", reason="the web app needs Gradio (pip install 'igkit[app]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(THIRD_PARTY)}
    process = subprocess.Popen([sys.executable, "-m", "igkit.cli.main", "app", "--port", str(port), "--domains", "numbers",
                                "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("igkit app:") and "temporary files in" in line:
                break
        root = Path(re.search(r"temporary files in (\S+), removed", "".join(lines)).group(1))
        assert root.is_dir() and (root / "uploads").is_dir()
        process.send_signal(getattr(signal, signal_name))
        rest = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, "".join(lines) + rest
    assert not root.exists()
    assert "temporary files removed" in rest


def test_every_built_in_domain_gets_its_own_view():
    from igkit.plugins.molecules.app_view import MoleculesView
    from igkit.plugins.text.app_view import TextView
    from igkit.plugins.vision.app_view import VisionView

    for name, view in (("molecules", MoleculesView), ("text", TextView), ("vision", VisionView)):
        assert type(find_view(igkit.get_domain(name))) is view, name


def test_a_service_without_a_work_folder_removes_its_own_when_it_goes(toy):
    import gc

    service = DomainService(toy)
    assert service.run("1,2,3").ok
    folder = service.workdir
    assert folder.is_dir() and any(folder.iterdir())
    del service
    gc.collect()
    assert not folder.exists()
