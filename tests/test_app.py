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
from igkit.cli import main

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
    assert "Σ attributions = 1.5" in text and "Completeness error:** 0.000%" in text
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
    assert [caption for _, caption in result.panels.pictures] == ["saliency", "grad_x_input"]
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
    assert any("Integrated gradients" in note for note in panels.notes)  # the paper's table
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
    assert [c.label for c in choices] == ["googlenet · random weights (untrained: not a classifier)"]
    assert dict(choices[0].settings) == {"weights": "random"}
    assert "not available on this machine" in choices[0].note and "not available" in view.intro
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
        "integrated gradients (the paper's rendering)", "integrated gradients: overlay (green +, red −)"]
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
    from igkit.cli import build_parser

    args = build_parser().parse_args(["app"])
    assert args.host == "127.0.0.1"


def test_make_services_refuses_unknown_domains(tmp_path):
    from igkit.app.server import make_services

    with pytest.raises(igkit.IGInputError, match="no installed domain 'nope'"):
        make_services(tmp_path, ["nope"])
    with pytest.raises(igkit.IGInputError, match="has no tab"):
        make_services(tmp_path, ["text"], {"vision": ["random"]})


def test_help_does_not_import_gradio():
    code = ("import sys; sys.argv=['igkit','--help']\nfrom igkit.cli import main\ntry: main()\n"
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
    assert len(ok) == len(bad) == 13
    assert "Error" in bad[0] and ok[0].startswith("Done in")


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
