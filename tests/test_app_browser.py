"""``igkit app`` end to end in a real headless browser (Debian's chromium driven by Playwright).

The app runs in a subprocess on a free port with every installed domain plus the third-party
toy domain; each test uses one tab as a person would: a bad input first (the page shows an
error and keeps serving), then a good one, then the visible results. Screenshots go to
``$IGKIT_APP_SCREENSHOTS`` (``IGKIT_APP_SCREENSHOTS=docs/app`` refreshes the README's), else
to a temporary folder. Skipped, with the reason, without Gradio, Playwright or chromium.
"""
from __future__ import annotations

import importlib.util
import io
import os
import re
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from app_page import (RESULT_TIMEOUT_MS, drag_alpha, element_screenshot, error_text, explain,
                      loaded_pictures, message_text, no_bare_error_badges, open_options, open_tab, pick,
                      progress_seen, screenshot, settle, type_text, upload, watch_progress, whole_pictures)

REPO = Path(__file__).resolve().parents[1]
THIRD_PARTY = Path(__file__).parent / "thirdparty"
CHROMIUM = os.environ.get("IGKIT_CHROMIUM", "/usr/bin/chromium")

for module, hint in (("gradio", "pip install 'igkit[app]'"), ("playwright", "pip install 'igkit[browser-test]'")):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed ({hint})", allow_module_level=True)
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium, or set IGKIT_CHROMIUM)",
                allow_module_level=True)

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """``igkit app`` in a subprocess (all domains + the toy one); its URL once it serves.

    Its output goes to a file, never to a pipe: a pipe nobody reads fills up (64 KiB of warnings
    and logs) and then blocks the app in the middle of a request. One torch thread: the app shares
    the two cores with chromium and pytest, and two threads spin against them (a GoogLeNet pass of
    the progress test took 8 s with two threads here, against 2.5 s alone)."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(THIRD_PARTY), os.environ.get("PYTHONPATH", "")])}
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "igkit.cli.main", "app", "--port", str(port),
                                    "--threads", "1", "--time-budget", "90"],
                                   stdout=log, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
    start = time.monotonic()
    try:
        while not any(line.startswith("igkit app:") and "http://" in line
                      for line in log_path.read_text().splitlines()):
            if process.poll() is not None:
                pytest.fail("the app stopped:\n" + log_path.read_text())
            if time.monotonic() - start > 180:
                pytest.fail("the app did not start within 180 s:\n" + log_path.read_text())
            time.sleep(0.2)
        print(f"app start-up: {time.monotonic() - start:.1f} s (its log: {log_path})")
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                           "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, app_url):
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(app_url)
    yield page
    page.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("IGKIT_APP_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder



def test_molecules_tab_methods_drawn_on_the_molecule_with_the_chosen_baseline_and_score(page, shots):
    open_tab(page, "molecules", "molecules")
    type_text(page, "molecules", "C1CC")
    explain(page, "molecules")
    assert "Invalid SMILES" in error_text(page, "molecules")
    type_text(page, "molecules", "CC(=O)Oc1ccccc1C(=O)O")
    pick(page, "#molecules-baseline", "zero")
    pick(page, "#molecules-score", "logit")
    open_options(page, "molecules")
    pick(page, "#molecules-methods", "occlusion")
    seconds = explain(page, "molecules")
    summary = page.inner_text("#molecules-summary")
    assert "completeness error" in summary and "baseline zero, score logit" in summary, summary
    assert "(logit)" in summary and "all-zero" in summary
    assert loaded_pictures(page, "#molecules-gallery", 2) >= 2  # atom heat map and pair matrix
    # integrated gradients and occlusion, both drawn on the molecule, side by side, none clipped
    assert loaded_pictures(page, "#molecules-methods-view", 2) == 2
    assert page.locator("#molecules-methods-view figcaption").all_inner_texts() == ["integrated gradients",
                                                                                     "occlusion"]
    whole_pictures(page, "#molecules-methods-view")
    assert "raises the target score relative to the baseline" in page.inner_text("#molecules-methods-view")
    assert "bonded pairs" in page.inner_text("#molecules-table1")
    assert "Dead features" in page.inner_text("#molecules-notes")
    drag_alpha(page, "molecules", 0.3)
    href = page.locator("#molecules-download a").first.get_attribute("href")
    archive = zipfile.ZipFile(io.BytesIO(page.request.get(href).body()))
    names = {Path(n).name for n in archive.namelist()}
    assert {"summary.json", "atoms.png", "atoms.csv", "accounting.json"} <= names, names
    settle(page)
    screenshot(page, shots / "molecules.png")
    print(f"molecule with occlusion: click to result {seconds:.2f} s")


def test_molecules_request_over_the_time_budget_says_so(page, shots):
    open_tab(page, "molecules", "molecules")
    type_text(page, "molecules", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C")
    open_options(page, "molecules")
    page.fill("#molecules-steps input", "2048")
    page.fill("#molecules-budget input", "0.01")
    explain(page, "molecules")
    message = error_text(page, "molecules")
    assert "went over the app's time budget of 0.01 s per request" in message, message
    assert "igkit app --time-budget SECONDS" in message
    no_bare_error_badges(page)
    element_screenshot(page, "#molecules-message", shots / "time_budget.png")


def test_text_tab_shows_unk_as_text_and_draws_methods_over_the_words(page, shots):
    open_tab(page, "text", "text")
    type_text(page, "text", "")
    explain(page, "text")
    assert "empty" in error_text(page, "text")
    assert "zero" in page.inner_text("#text-path-note")  # no baseline choice here: the tab says which is used
    type_text(page, "text", "the qwzx <unk> said more")
    open_options(page, "text")
    pick(page, "#text-methods", "occlusion")
    seconds = explain(page, "text")
    highlight = page.inner_text("#text-highlight")
    for word in ("the", "qwzx*", "<unk>*", "said", "more"):
        assert word in highlight, highlight
    summary = page.inner_text("#text-summary")
    assert "<eos>" in summary or "Target:" in summary, summary
    notes = page.inner_text("#text-notes")
    assert "are read as <unk> (marked * in the tables): qwzx" in notes, notes  # the warning, whole
    assert "<unk>*" in notes and "The paper's table" in notes
    assert page.locator("#text-methods-view figcaption").all_inner_texts() == ["integrated gradients", "occlusion"]
    loaded_pictures(page, "#text-methods-view", 2)
    settle(page)
    element_screenshot(page, "#text-highlight", shots / "text_unk_words.png")
    element_screenshot(page, "#text-notes", shots / "text_unk_notes.png")
    # explain another next word: type it into the choice and run again
    type_text(page, "text", "the shareholders claimed more")
    page.fill("#text-target input", "of")
    page.keyboard.press("Enter")
    explain(page, "text")
    assert "Target: of" in page.inner_text("#text-summary")
    drag_alpha(page, "text", 0.5)
    settle(page)
    screenshot(page, shots / "text.png")
    print(f"sentence: click to result {seconds:.2f} s")


def test_images_tab_trained_digits_model_reads_a_test_digit(page, shots, tmp_path):
    from igkit.plugins.vision.digits import models_dir

    open_tab(page, "images", "vision")
    model = page.locator("#vision-model input").input_value()
    assert model.startswith("digits · trained"), model
    assert "Trained" in page.inner_text("#vision-model-note")
    explain(page, "vision")  # no picture yet
    assert "No picture" in error_text(page, "vision")
    not_a_picture = tmp_path / "notes.png"
    not_a_picture.write_text("this is text, not a picture")
    before = message_text(page, "vision")
    page.set_input_files("#vision-input input[type=file]", str(not_a_picture))
    page.wait_for_function("([b]) => { const m = document.querySelector('#vision-message [data-testid=markdown]');"
                           " return m && m.innerText !== b && m.querySelector('.igkit-error'); }", arg=[before],
                           timeout=RESULT_TIMEOUT_MS)  # said at once, on upload
    message = message_text(page, "vision")
    assert "The file you uploaded (notes.png) is not a picture this app can read" in message, message
    element_screenshot(page, "#vision-message", shots / "images_not_a_picture.png")
    no_bare_error_badges(page)
    page.set_input_files("#vision-input input[type=file]", str(models_dir() / "digit_test_7.png"))
    page.wait_for_selector("#vision-preview img", timeout=30_000)
    open_options(page, "vision")
    pick(page, "#vision-methods", "saliency")
    seconds = explain(page, "vision")
    label = page.inner_text("#vision-label")
    assert label.split()[0:2] == ["top-5", "predictions"] and "\n7\n" in f"\n{label}\n", label
    assert "UNTRAINED" not in label
    assert "completeness error" in page.inner_text("#vision-summary")
    assert loaded_pictures(page, "#vision-gallery", 2) >= 2  # the paper's rendering and the overlay
    assert page.locator("#vision-methods-view figcaption").all_inner_texts() == ["integrated gradients", "saliency"]
    whole_pictures(page, "#vision-methods-view")
    drag_alpha(page, "vision", 0.4)
    settle(page)
    screenshot(page, shots / "images.png")
    # the untrained choice says so before anything runs
    pick(page, "#vision-model", "googlenet · random weights (untrained: not a classifier)")
    page.wait_for_function("() => document.querySelector('#vision-model-note').innerText.includes('Untrained')",
                           timeout=30_000)
    print(f"32-pixel digit with saliency: click to result {seconds:.2f} s")


def test_images_tab_shows_progress_while_it_works_and_stops_at_the_time_budget(page, shots):
    """A request far too big for its budget (a photo through googlenet, 2048 fixed steps: thousands
    of forward/backward passes of a 224-pixel picture) shows its stage and the share of its budget
    while it works, then the budget set in the page stops it with its sentence."""
    from igkit.app import examples_dir

    open_tab(page, "images", "vision")
    pick(page, "#vision-model", "googlenet · random weights (untrained: not a classifier)")
    upload(page, "#vision-input", examples_dir() / "chelsea.jpg")
    page.wait_for_selector("#vision-preview img", timeout=30_000)
    open_options(page, "vision")
    page.fill("#vision-steps input", "2048")
    page.fill("#vision-budget input", "5")
    watch_progress(page, "vision")
    start = time.monotonic()
    page.click("#vision-run")
    page.wait_for_function("() => window.igkitProgress.some(t => t.startsWith('integrating: '))", timeout=60_000)
    assert not message_text(page, "vision").strip()  # seen while it works, before any answer
    screenshot(page, shots / "progress.png")
    message = error_text(page, "vision")
    seconds = time.monotonic() - start
    stages = [t.split(":")[0] for t in progress_seen(page) if re.fullmatch(r"[a-z' ]+: [0-9.]+ s of 5 s.*%", t)]
    # each seen when it lasts over 10 ms; the stopped request's record may be written after it
    order = ["loading the model", "reading the item", "integrating", "writing the item's files"]
    assert "integrating" in stages and stages == sorted(stages, key=order.index), progress_seen(page)
    assert "while integrating: it went over the app's time budget of 5 s per request" in message, message
    stopped = float(re.search(r"stopped after ([0-9.]+) s", message).group(1))
    assert 5 <= stopped <= seconds, (stopped, seconds)
    no_bare_error_badges(page)
    print(f"photo with 2048 steps: stopped by its 5 s budget after {stopped:.1f} s (inside a pass of googlenet;"
          f" click to message {seconds:.1f} s)")

def test_third_party_domain_gets_a_generic_tab(page, shots):
    open_tab(page, "numbers", "numbers")
    type_text(page, "numbers", "1,2")
    explain(page, "numbers")
    assert "has 2 numbers" in error_text(page, "numbers")
    type_text(page, "numbers", str(REPO / "pyproject.toml"))  # a server path is refused, never read
    explain(page, "numbers")
    assert "never reads server files" in error_text(page, "numbers")
    # another method beside integrated gradients: both drawn the same way
    open_options(page, "numbers")
    pick(page, "#numbers-methods", "saliency")
    type_text(page, "numbers", "1,2,3")
    explain(page, "numbers")
    assert loaded_pictures(page, "#numbers-methods-view", 2) == 2
    summary = page.inner_text("#numbers-summary")
    assert "saliency" in summary and "Σ attributions = 1.5" in summary and "0.00%" in summary, summary
    assert "importance_input0.csv" in page.inner_text("#numbers-table1")
    page.wait_for_selector("#numbers-download a", timeout=30_000)
    # every file the domain wrote can be looked at: its own text file here
    page.locator("#tab-numbers").get_by_text("All files of the item").click()
    page.fill("#numbers-files input", "bars.txt")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.body.innerText.includes('2.000 -2.000 1.500')", timeout=30_000)
    settle(page)
    screenshot(page, shots / "third_party.png")


def test_images_tab_takes_your_own_weights_and_class_names(page, shots, tmp_path):
    """Weights a person saved from their own digits network (a state dict) and their class names:
    the result is labelled with those names and the page says whose weights it used and that igkit
    cannot tell whether they are trained; the same weights named as another architecture get a
    sentence that says they do not fit."""
    from safetensors.torch import save_file

    from igkit.plugins.vision.digits import load_shipped, models_dir

    network, _ = load_shipped()
    weights = tmp_path / "my_digits.safetensors"
    save_file(network.state_dict(), str(weights))
    words = ["nought", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    names = tmp_path / "my_classes.txt"
    names.write_text("".join(f"handwritten {w}\n" for w in words))
    open_tab(page, "images", "vision")
    upload(page, "#vision-input", models_dir() / "digit_test_7.png")
    page.locator("#vision-own").get_by_text("Your own model").click()
    page.fill("#vision-own-architecture :is(textarea, input)", "digits")
    upload(page, "#vision-own-weights", weights)
    upload(page, "#vision-own-labels", names)
    page.wait_for_function("() => document.querySelector('#vision-model-note').innerText.includes("
                           "'Your own model (given below) replaces this choice')", timeout=30_000)
    seconds = explain(page, "vision")
    label = page.inner_text("#vision-label")
    assert label.splitlines()[:2] == ["top-5 predictions", "handwritten seven"], label
    summary = page.inner_text("#vision-summary")
    assert "my_digits.safetensors" in summary and "Target: handwritten seven" in summary, summary
    notes = page.inner_text("#vision-notes")
    assert "your digits weights (my_digits.safetensors)" in notes and "class names from your file" in notes, notes
    assert "cannot tell whether they are trained" in notes
    settle(page)
    screenshot(page, shots / "images_own_weights.png")
    page.fill("#vision-own-architecture :is(textarea, input)", "resnet18")
    explain(page, "vision")
    message = error_text(page, "vision")
    assert "my_digits.safetensors do not fit this architecture" in message, message
    no_bare_error_badges(page)
    element_screenshot(page, "#vision-message", shots / "images_weights_do_not_fit.png")
    print(f"your own digits weights and class names: click to result {seconds:.2f} s")
