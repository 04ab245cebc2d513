"""What a person does on the page of ``igkit app``, for the browser tests: open a tab, type or
upload, pick from a dropdown, click Explain and wait for the result or the sentence that says
what was wrong, and take the screenshots the README shows. ``page`` is a Playwright page."""
from __future__ import annotations

import time
from pathlib import Path

#: a model call on a busy 2-core machine can take a while; CI machines are faster
RESULT_TIMEOUT_MS = 240_000


def open_tab(page, title: str, name: str) -> None:
    page.get_by_role("tab", name=title, exact=True).click()
    page.wait_for_selector(f"#{name}-run", state="visible", timeout=30_000)


def message_text(page, name: str) -> str:
    return page.inner_text(f"#{name}-message [data-testid=markdown]")


def explain(page, name: str) -> float:
    """Click Explain and wait for a result or an error; returns the seconds it took."""
    before = message_text(page, name)
    start = time.monotonic()
    page.click(f"#{name}-run")
    page.wait_for_function(
        "([name, before]) => { const m = document.querySelector('#' + name + '-message [data-testid=markdown]');"
        " const t = m ? m.innerText : ''; const busy = document.querySelector('#' + name + '-summary .progress-text');"
        " return !busy && t !== before && (t.includes('Done in') || !!m.querySelector('.igkit-error')); }",
        arg=[name, before], timeout=RESULT_TIMEOUT_MS)
    return time.monotonic() - start


def loaded_pictures(page, selector: str, at_least: int = 1) -> int:
    """Wait until ``selector`` shows ``at_least`` loaded pictures; returns how many it shows."""
    page.wait_for_function(
        "([sel, n]) => Array.from(document.querySelectorAll(sel + ' img'))"
        ".filter(i => i.complete && i.naturalWidth > 0).length >= n", arg=[selector, at_least],
        timeout=60_000)
    return page.locator(f"{selector} img").count()


def type_text(page, name: str, text: str) -> None:
    page.fill(f"#{name}-input textarea", text)


def error_text(page, name: str) -> str:
    """The sentence that says what was wrong; fails at once, with what the page says, when the
    request ends with a result instead."""
    page.wait_for_function(
        "(name) => { const m = document.querySelector('#' + name + '-message');"
        " return m && (!!m.querySelector('.igkit-error') || m.innerText.includes('Done in')); }",
        arg=name, timeout=RESULT_TIMEOUT_MS)
    text = message_text(page, name)
    assert page.locator(f"#{name}-message .igkit-error").count(), f"expected an error; the page says {text!r}"
    return text


def drag_alpha(page, name: str, fraction: float) -> None:
    """Drag the α slider from its right end to ``fraction`` and wait for the new gradient picture."""
    loaded_pictures(page, f"#{name}-gradient")
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


def screenshot(page, path: Path) -> None:
    """The whole page, as a 256-colour PNG (a third of the size; these go into the README)."""
    from PIL import Image

    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def open_options(page, name: str) -> None:
    page.locator(f"#{name}-options").get_by_text("Method, integration and time budget").click()
    page.wait_for_selector(f"#{name}-methods input", state="visible", timeout=30_000)


def pick(page, selector: str, value: str) -> None:
    """Open a dropdown, filter it by ``value`` and click the option that is exactly ``value``."""
    page.click(f"{selector} input")
    page.fill(f"{selector} input", value)
    page.get_by_role("option", name=value, exact=True).first.click()  # the open list (outside the element)
    page.keyboard.press("Escape")


def no_bare_error_badges(page) -> None:
    """Gradio's own failure display (a red "Error" badge with no sentence) never appears."""
    badges = page.locator(".error, [data-testid=toast-body]").all_inner_texts()
    assert not [b for b in badges if b.strip().lower() in ("error", "")], badges


def element_screenshot(page, selector: str, path: Path) -> None:
    """One part of the page (a message, the words), as a small PNG."""
    from PIL import Image

    page.locator(selector).screenshot(path=str(path))
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def settle(page) -> None:
    """Wait until no event is pending (no progress indicator left), for a clean screenshot."""
    page.wait_for_function("() => !document.querySelector('.progress-text, .eta-bar')", timeout=60_000)


def whole_pictures(page, selector: str) -> None:
    """Every picture is shown whole: not wider than its figure, height in proportion to its width."""
    for box in page.locator(f"{selector} img").all():
        shown = box.evaluate("i => [i.clientWidth, i.clientHeight, i.naturalWidth, i.naturalHeight, "
                             "i.parentElement.clientWidth]")
        width, height, natural_w, natural_h, figure = shown
        assert 0 < width <= figure and abs(height / width - natural_h / natural_w) < 0.02, shown


def upload(page, selector: str, path: Path) -> None:
    """Upload ``path`` into the file field ``selector`` and wait until the field shows its name."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.set_input_files(f"{selector} input[type=file]", str(path))
    try:
        # the field may break the name over lines ("chelsea" / ".jpg"): compared without whitespace
        page.wait_for_function("([sel, name]) => { const f = document.querySelector(sel); const bare = t =>"
                               " t.replace(/\\s+/g, ''); return f && bare(f.innerText).includes(bare(name)); }",
                               arg=[selector, path.name], timeout=60_000)
    except PlaywrightTimeout:
        toasts = page.locator("[data-testid=toast-body]").all_inner_texts()
        raise AssertionError(f"{path.name} did not show in {selector} within 60 s; the field shows "
                             f"{page.inner_text(selector)!r}, messages {toasts}") from None


def watch_progress(page, name: str) -> None:
    """From now on, record every progress text the tab shows (Gradio's bar and its label), in the
    order they appear: :func:`progress_seen` reads them."""
    page.evaluate(
        """(name) => { window.igkitProgress = [];
          const tab = document.querySelector('#tab-' + name);
          const record = () => tab.querySelectorAll('.progress-level-inner, .progress-text').forEach(e => {
            const t = e.innerText.trim(); if (t && !window.igkitProgress.includes(t)) window.igkitProgress.push(t); });
          new MutationObserver(record).observe(tab, {subtree: true, childList: true, characterData: true}); }""",
        name)


def progress_seen(page) -> list[str]:
    return page.evaluate("() => window.igkitProgress")
