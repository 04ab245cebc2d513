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
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
THIRD_PARTY = Path(__file__).parent / "thirdparty"
CHROMIUM = os.environ.get("IGKIT_CHROMIUM", "/usr/bin/chromium")
#: a model call on a busy 2-core machine can take a while; CI machines are faster
RESULT_TIMEOUT_MS = 240_000

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
def app_url():
    """``igkit app`` in a subprocess (all domains + the toy one); its URL once it serves."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(THIRD_PARTY), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "igkit.cli.main", "app", "--port", str(port), "--threads", "2",
                                "--time-budget", "90"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
    lines: list[str] = []
    start = time.monotonic()
    try:
        while time.monotonic() - start < 180:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            lines.append(line)
            if line.startswith("igkit app:") and "http://" in line:
                break
        else:
            pytest.fail("the app did not start within 180 s:\n" + "".join(lines))
        if process.poll() is not None:
            pytest.fail("the app stopped:\n" + "".join(lines))
        print(f"app start-up: {time.monotonic() - start:.1f} s ({lines[-1].strip()})")
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


def _open_tab(page, title: str, name: str) -> None:
    page.get_by_role("tab", name=title, exact=True).click()
    page.wait_for_selector(f"#{name}-run", state="visible", timeout=30_000)


def _message(page, name: str) -> str:
    return page.inner_text(f"#{name}-message [data-testid=markdown]")


def _run(page, name: str) -> float:
    """Click Explain and wait for a result or an error; returns the seconds it took."""
    before = _message(page, name)
    start = time.monotonic()
    page.click(f"#{name}-run")
    page.wait_for_function(
        "([name, before]) => { const m = document.querySelector('#' + name + '-message [data-testid=markdown]');"
        " const t = m ? m.innerText : ''; const busy = document.querySelector('#' + name + '-summary .progress-text');"
        " return !busy && t !== before && (t.includes('Done in') || !!m.querySelector('.igkit-error')); }",
        arg=[name, before], timeout=RESULT_TIMEOUT_MS)
    return time.monotonic() - start


def _images(page, selector: str, at_least: int = 1) -> int:
    """Wait until ``selector`` shows ``at_least`` loaded pictures; returns how many it shows."""
    page.wait_for_function(
        "([sel, n]) => Array.from(document.querySelectorAll(sel + ' img'))"
        ".filter(i => i.complete && i.naturalWidth > 0).length >= n", arg=[selector, at_least],
        timeout=60_000)
    return page.locator(f"{selector} img").count()


def _type(page, name: str, text: str) -> None:
    page.fill(f"#{name}-input textarea", text)


def _error(page, name: str) -> str:
    page.wait_for_selector(f"#{name}-message .igkit-error", timeout=RESULT_TIMEOUT_MS)
    return _message(page, name)


def _drag_alpha(page, name: str, fraction: float) -> None:
    """Drag the α slider from its right end to ``fraction`` and wait for the new gradient picture."""
    _images(page, f"#{name}-gradient")
    before = page.locator(f"#{name}-gradient img").get_attribute("src")
    slider = page.locator(f"#{name}-alpha input[type=range]")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] - 2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * fraction, y, steps=4)
    page.mouse.up()
    page.wait_for_function("([id, b]) => { const i = document.querySelector(id); return i && i.src !== b; }",
                           arg=[f"#{name}-gradient img", before], timeout=90_000)
    alpha = float(page.locator(f"#{name}-alpha input[type=number]").input_value())
    assert abs(alpha - fraction) < 0.1, alpha


def _screenshot(page, path: Path) -> None:
    """The whole page, as a 256-colour PNG (a third of the size; these go into the README)."""
    from PIL import Image

    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def _open_options(page, name: str) -> None:
    page.locator(f"#{name}-options").get_by_text("Method, integration and time budget").click()
    page.wait_for_selector(f"#{name}-methods input", state="visible", timeout=30_000)


def _pick(page, selector: str, value: str) -> None:
    """Open a dropdown, filter it by ``value`` and click the option that is exactly ``value``."""
    page.click(f"{selector} input")
    page.fill(f"{selector} input", value)
    page.get_by_role("option", name=value, exact=True).first.click()  # the open list (outside the element)
    page.keyboard.press("Escape")


def _no_bare_error_badges(page) -> None:
    """Gradio's own failure display (a red "Error" badge with no sentence) never appears."""
    badges = page.locator(".error, [data-testid=toast-body]").all_inner_texts()
    assert not [b for b in badges if b.strip().lower() in ("error", "")], badges


def _element_screenshot(page, selector: str, path: Path) -> None:
    """One part of the page (a message, the words), as a small PNG."""
    from PIL import Image

    page.locator(selector).screenshot(path=str(path))
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def _settle(page) -> None:
    """Wait until no event is pending (no progress indicator left), for a clean screenshot."""
    page.wait_for_function("() => !document.querySelector('.progress-text, .eta-bar')", timeout=60_000)


def test_molecules_tab_methods_drawn_on_the_molecule_with_the_chosen_baseline_and_score(page, shots):
    _open_tab(page, "molecules", "molecules")
    _type(page, "molecules", "C1CC")
    _run(page, "molecules")
    assert "Invalid SMILES" in _error(page, "molecules")
    _type(page, "molecules", "CC(=O)Oc1ccccc1C(=O)O")
    _pick(page, "#molecules-baseline", "zero")
    _pick(page, "#molecules-score", "logit")
    _open_options(page, "molecules")
    _pick(page, "#molecules-methods", "occlusion")
    seconds = _run(page, "molecules")
    summary = page.inner_text("#molecules-summary")
    assert "completeness error" in summary and "baseline zero, score logit" in summary, summary
    assert "(logit)" in summary and "all-zero" in summary
    assert _images(page, "#molecules-gallery", 2) >= 2  # atom heat map and pair matrix
    # integrated gradients and occlusion, both drawn on the molecule, side by side, none clipped
    assert _images(page, "#molecules-methods-view", 2) == 2
    assert page.locator("#molecules-methods-view figcaption").all_inner_texts() == ["integrated gradients",
                                                                                     "occlusion"]
    _whole_pictures(page, "#molecules-methods-view")
    assert "raises the target score relative to the baseline" in page.inner_text("#molecules-methods-view")
    assert "bonded pairs" in page.inner_text("#molecules-table1")
    assert "Dead features" in page.inner_text("#molecules-notes")
    _drag_alpha(page, "molecules", 0.3)
    href = page.locator("#molecules-download a").first.get_attribute("href")
    archive = zipfile.ZipFile(io.BytesIO(page.request.get(href).body()))
    names = {Path(n).name for n in archive.namelist()}
    assert {"summary.json", "atoms.png", "atoms.csv", "accounting.json"} <= names, names
    _settle(page)
    _screenshot(page, shots / "molecules.png")
    print(f"molecule with occlusion: click to result {seconds:.2f} s")


def _whole_pictures(page, selector: str) -> None:
    """Every picture is shown whole: not wider than its figure, height in proportion to its width."""
    for box in page.locator(f"{selector} img").all():
        shown = box.evaluate("i => [i.clientWidth, i.clientHeight, i.naturalWidth, i.naturalHeight, "
                             "i.parentElement.clientWidth]")
        width, height, natural_w, natural_h, figure = shown
        assert 0 < width <= figure and abs(height / width - natural_h / natural_w) < 0.02, shown


def test_molecules_request_over_the_time_budget_says_so(page, shots):
    _open_tab(page, "molecules", "molecules")
    _type(page, "molecules", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C")
    _open_options(page, "molecules")
    page.fill("#molecules-steps input", "2048")
    page.fill("#molecules-budget input", "0.01")
    _run(page, "molecules")
    message = _error(page, "molecules")
    assert "went over the app's time budget of 0.01 s per request" in message, message
    assert "igkit app --time-budget SECONDS" in message
    _no_bare_error_badges(page)
    _element_screenshot(page, "#molecules-message", shots / "time_budget.png")


def test_text_tab_shows_unk_as_text_and_draws_methods_over_the_words(page, shots):
    _open_tab(page, "text", "text")
    _type(page, "text", "")
    _run(page, "text")
    assert "empty" in _error(page, "text")
    assert "zero" in page.inner_text("#text-path-note")  # no baseline choice here: the tab says which is used
    _type(page, "text", "the qwzx <unk> said more")
    _open_options(page, "text")
    _pick(page, "#text-methods", "occlusion")
    seconds = _run(page, "text")
    highlight = page.inner_text("#text-highlight")
    for word in ("the", "qwzx*", "<unk>*", "said", "more"):
        assert word in highlight, highlight
    summary = page.inner_text("#text-summary")
    assert "<eos>" in summary or "Target:" in summary, summary
    notes = page.inner_text("#text-notes")
    assert "are read as <unk> (marked * in the tables): qwzx" in notes, notes  # the warning, whole
    assert "<unk>*" in notes and "The paper's table" in notes
    assert page.locator("#text-methods-view figcaption").all_inner_texts() == ["integrated gradients", "occlusion"]
    _images(page, "#text-methods-view", 2)
    _settle(page)
    _element_screenshot(page, "#text-highlight", shots / "text_unk_words.png")
    _element_screenshot(page, "#text-notes", shots / "text_unk_notes.png")
    # explain another next word: type it into the choice and run again
    _type(page, "text", "the shareholders claimed more")
    page.fill("#text-target input", "of")
    page.keyboard.press("Enter")
    _run(page, "text")
    assert "Target: of" in page.inner_text("#text-summary")
    _drag_alpha(page, "text", 0.5)
    _settle(page)
    _screenshot(page, shots / "text.png")
    print(f"sentence: click to result {seconds:.2f} s")


def test_images_tab_trained_digits_model_reads_a_test_digit(page, shots, tmp_path):
    from igkit.plugins.vision.digits import models_dir

    _open_tab(page, "images", "vision")
    model = page.locator("#vision-model input").input_value()
    assert model.startswith("digits · trained"), model
    assert "Trained" in page.inner_text("#vision-model-note")
    _run(page, "vision")  # no picture yet
    assert "No picture" in _error(page, "vision")
    not_a_picture = tmp_path / "notes.png"
    not_a_picture.write_text("this is text, not a picture")
    before = _message(page, "vision")
    page.set_input_files("#vision-input input[type=file]", str(not_a_picture))
    page.wait_for_function("([b]) => { const m = document.querySelector('#vision-message [data-testid=markdown]');"
                           " return m && m.innerText !== b && m.querySelector('.igkit-error'); }", arg=[before],
                           timeout=RESULT_TIMEOUT_MS)  # said at once, on upload
    message = _message(page, "vision")
    assert "The file you uploaded (notes.png) is not a picture this app can read" in message, message
    _element_screenshot(page, "#vision-message", shots / "images_not_a_picture.png")
    _no_bare_error_badges(page)
    page.set_input_files("#vision-input input[type=file]", str(models_dir() / "digit_test_7.png"))
    page.wait_for_selector("#vision-preview img", timeout=30_000)
    _open_options(page, "vision")
    _pick(page, "#vision-methods", "saliency")
    seconds = _run(page, "vision")
    label = page.inner_text("#vision-label")
    assert label.split()[0:2] == ["top-5", "predictions"] and "\n7\n" in f"\n{label}\n", label
    assert "UNTRAINED" not in label
    assert "completeness error" in page.inner_text("#vision-summary")
    assert _images(page, "#vision-gallery", 2) >= 2  # the paper's rendering and the overlay
    assert page.locator("#vision-methods-view figcaption").all_inner_texts() == ["integrated gradients", "saliency"]
    _whole_pictures(page, "#vision-methods-view")
    _drag_alpha(page, "vision", 0.4)
    _settle(page)
    _screenshot(page, shots / "images.png")
    # the untrained choice says so before anything runs
    _pick(page, "#vision-model", "googlenet · random weights (untrained: not a classifier)")
    page.wait_for_function("() => document.querySelector('#vision-model-note').innerText.includes('Untrained')",
                           timeout=30_000)
    print(f"32-pixel digit with saliency: click to result {seconds:.2f} s")


def test_third_party_domain_gets_a_generic_tab(page, shots):
    _open_tab(page, "numbers", "numbers")
    _type(page, "numbers", "1,2")
    _run(page, "numbers")
    assert "has 2 numbers" in _error(page, "numbers")
    _type(page, "numbers", str(REPO / "pyproject.toml"))  # a server path is refused, never read
    _run(page, "numbers")
    assert "never reads server files" in _error(page, "numbers")
    # another method beside integrated gradients: both drawn the same way
    _open_options(page, "numbers")
    _pick(page, "#numbers-methods", "saliency")
    _type(page, "numbers", "1,2,3")
    _run(page, "numbers")
    assert _images(page, "#numbers-methods-view", 2) == 2
    summary = page.inner_text("#numbers-summary")
    assert "saliency" in summary and "Σ attributions = 1.5" in summary and "0.00%" in summary, summary
    assert "importance_input0.csv" in page.inner_text("#numbers-table1")
    page.wait_for_selector("#numbers-download a", timeout=30_000)
    # every file the domain wrote can be looked at: its own text file here
    page.locator("#tab-numbers").get_by_text("All files of the item").click()
    page.fill("#numbers-files input", "bars.txt")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.body.innerText.includes('2.000 -2.000 1.500')", timeout=30_000)
    _settle(page)
    _screenshot(page, shots / "third_party.png")
