"""One Gradio tab per domain, built from its :class:`~igkit.app.service.DomainService`.

The tab is the same for every domain: input (text box or file upload), model (or one of your
own), what to explain, the baseline and score, method and integration options and the time
budget, then the result — message, what was explained, top predictions, highlighted words,
featured pictures, every method drawn the same way side by side, tables, the α slider (score
along the path with a marker, and the gradient there), the download, and every file the domain
wrote. A domain's :class:`~igkit.app.views.AppView` decides what fills them. Every user string
reaches the page escaped (:mod:`igkit.app.html`); every failure is a sentence in the page.

Gradio is imported only here and in :mod:`igkit.app.server` (``igkit app`` runs them).
"""
from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

from igkit.app.html import error_html, escape_html, escape_markdown, highlighted_words, picture_grid
from igkit.app.service import DomainService, Result
from igkit.app.views import Table, read_file_view, table_files
from igkit.errors import IgkitError

#: event functions of one domain share one queue slot: one model call at a time per model
CONCURRENCY = 1
#: the tab's result outputs, in the order :func:`result_updates` fills them
RESULT_OUTPUTS = ("message", "summary", "label", "highlight", "gallery", "methods", "table1", "table2", "notes",
                  "curve", "gradient", "download", "target", "token")


def method_choices(domain: Any = None) -> list[str]:
    """Methods computed beside integrated gradients (which is always computed), less those the
    domain declares unavailable."""
    from igkit.methods.registry import METHODS, refresh_plugin_methods

    refresh_plugin_methods()
    unavailable = getattr(domain, "unavailable_methods", None) or {}
    return sorted(name for name in METHODS if name != "integrated_gradients" and name not in unavailable)


def _table_update(gr: Any, table: Table | None) -> Any:
    if table is None:
        return gr.update(value=None, visible=False)
    width = max([len(table.headers)] + [len(r) for r in table.rows]) if table.rows or table.headers else 0
    headers = list(table.headers) + [""] * (width - len(table.headers))
    rows = [list(r) + [""] * (width - len(r)) for r in table.rows]
    return gr.update(value={"headers": headers, "data": rows}, label=table.title, visible=True)


def error_updates(gr: Any, message: str) -> list[Any]:
    """Every result output cleared, and the message as a sentence."""
    hidden = gr.update(value=None, visible=False)
    return [error_html(message), "", hidden, hidden, hidden, hidden, hidden, hidden, "", None, None, None,
            gr.update(), None]


def result_updates(gr: Any, service: DomainService, result: Result, alpha: float = 1.0,
                   target: str | None = None) -> list[Any]:
    """Values for the tab's outputs (order of :data:`RESULT_OUTPUTS`)."""
    if not result.ok:
        return error_updates(gr, result.error)
    panels = result.panels
    tables = panels.tables + [None, None]
    label = (gr.update(value=panels.label, label=panels.label_title, visible=True) if panels.label
             else gr.update(value=None, visible=False))
    highlight = (gr.update(value=highlighted_words(panels.highlight, panels.highlight_title), visible=True)
                 if panels.highlight else gr.update(value=None, visible=False))
    gallery = picture_grid(panels.pictures)
    methods = picture_grid(panels.methods, wide=service.view.wide_pictures,
                           footer=f"<p class='igkit-legend-line'>{escape_html(service.view.methods_legend)}</p>")
    try:
        curve, gradient = service.interior(result.token, alpha)
    except Exception as exc:  # noqa: BLE001 - e.g. a stack of baselines: no single interior gradient
        curve, gradient = None, None
        panels.notes.append(escape_markdown(f"α slider: {_short_error(exc)}"))
    if panels.targets is not None:
        chosen = target if target else None
        choices = panels.targets + ([chosen] if chosen and chosen not in panels.targets else [])
        target_update = gr.update(choices=choices, value=chosen)
    else:
        target_update = gr.update()
    notes = "\n\n".join(panels.notes)
    message = f"Done in {result.seconds:.2f} s."
    return [message, result.summary_text, label, highlight, gr.update(value=gallery, visible=bool(gallery)),
            gr.update(value=methods, visible=bool(panels.methods)), _table_update(gr, tables[0]),
            _table_update(gr, tables[1]), notes, curve, gradient, str(result.zip_path), target_update,
            result.token]


def _short_error(exc: BaseException) -> str:
    if isinstance(exc, IgkitError):
        return str(exc)
    traceback.print_exception(exc, file=sys.stderr)
    return f"internal error ({type(exc).__name__}: {exc}); the server log has the details"


def _alpha(value: Any) -> float:
    try:
        return min(1.0, max(0.0, float(value)))
    except (TypeError, ValueError):
        return 1.0


def _input_column(gr: Any, service: DomainService) -> dict[str, Any]:
    """The left column: item, model (or your own), target, baseline and score, methods, budget."""
    view, name = service.view, service.domain.name
    parts: dict[str, Any] = {}
    if view.input_kind == "image":
        parts["item"] = gr.File(label=view.input_label, type="filepath", elem_id=f"{name}-input", height=120)
        parts["preview"] = gr.Image(label="The picture", interactive=False, height=200, elem_id=f"{name}-preview")
    else:
        parts["item"] = gr.Textbox(label=view.input_label, placeholder=view.placeholder, lines=2,
                                   max_length=view.max_chars, elem_id=f"{name}-input")
    if view.examples:
        gr.Examples(examples=[[e] for e in view.examples], inputs=[parts["item"]], label="Examples",
                    examples_per_page=8)
    first = service.choices[0]
    parts["model"] = gr.Dropdown(choices=[c.label for c in service.choices], value=first.label, label="Model",
                                 elem_id=f"{name}-model")
    parts["model_note"] = gr.Markdown(first.note, elem_id=f"{name}-model-note")
    parts["custom"] = []
    if view.custom_inputs:
        with gr.Accordion("Your own model (replaces the choice above)", open=False, elem_id=f"{name}-own"):
            for field in view.custom_inputs:
                if field.kind == "file":
                    box = gr.File(label=field.label, type="filepath", elem_id=f"{name}-own-{field.key}", height=90)
                else:
                    box = gr.Textbox(label=field.label, info=field.info or None, elem_id=f"{name}-own-{field.key}")
                parts["custom"].append(box)
    parts["target"] = gr.Dropdown(choices=[], value=None, allow_custom_value=True,
                                  label=view.target_label or "Target", visible=view.target_label is not None,
                                  elem_id=f"{name}-target", info="empty: the model's top choice; the list fills "
                                                                 "after a run")
    parts["path"] = []
    for choice in service.path_choices:
        parts["path"].append(gr.Dropdown(choices=list(choice.options), value=choice.default, label=choice.label,
                                         info=choice.help or None, elem_id=f"{name}-{choice.setting}"))
    if not service.path_choices and view.path_note:
        gr.Markdown(view.path_note, elem_id=f"{name}-path-note")
    with gr.Accordion("Method, integration and time budget", open=False, elem_id=f"{name}-options"):
        parts["methods"] = gr.Dropdown(choices=method_choices(service.domain), value=[], multiselect=True,
                                       label="Other methods, drawn beside integrated gradients (always computed)",
                                       elem_id=f"{name}-methods")
        parts["steps"] = gr.Number(value=0, precision=0, minimum=0, maximum=2048, elem_id=f"{name}-steps",
                                   label="Steps (0: adaptive until the completeness error is within the tolerance)")
        parts["tolerance"] = gr.Number(value=service.domain.integration.tolerance, minimum=0, maximum=1,
                                       label="Tolerance (share of F(input) − F(baseline))")
        parts["budget"] = gr.Number(value=service.budget_s, minimum=0, maximum=service.budget_s,
                                    elem_id=f"{name}-budget",
                                    label=f"Time budget per request, seconds (at most {service.budget_s:g}, set "
                                          f"with igkit app --time-budget)")
    parts["run"] = gr.Button("Explain", variant="primary", elem_id=f"{name}-run")
    return parts


def _result_column(gr: Any, name: str) -> dict[str, Any]:
    """The right column: what was explained, the pictures, the tables, the α slider, the files."""
    out: dict[str, Any] = {}
    out["message"] = gr.Markdown(elem_id=f"{name}-message")
    out["summary"] = gr.Markdown(elem_id=f"{name}-summary")
    out["label"] = gr.Label(num_top_classes=10, visible=False, elem_id=f"{name}-label")
    out["highlight"] = gr.HTML(visible=False, elem_id=f"{name}-highlight")
    out["gallery"] = gr.HTML(visible=False, elem_id=f"{name}-gallery")
    out["methods"] = gr.HTML(visible=False, elem_id=f"{name}-methods-view")
    out["table1"] = gr.Dataframe(visible=False, interactive=False, elem_id=f"{name}-table1", max_height=360)
    out["table2"] = gr.Dataframe(visible=False, interactive=False, elem_id=f"{name}-table2", max_height=360)
    out["notes"] = gr.Markdown(elem_id=f"{name}-notes")
    with gr.Accordion("Along the path: drag α", open=True):
        out["alpha"] = gr.Slider(0, 1, value=1.0, step=0.01, label="α (0 = baseline, 1 = input)",
                                 elem_id=f"{name}-alpha")
        with gr.Row():
            out["curve"] = gr.Image(label="score vs α", elem_id=f"{name}-curve", interactive=False)
            out["gradient"] = gr.Image(label="gradient at α", elem_id=f"{name}-gradient", interactive=False)
    out["download"] = gr.File(label="Download: the item folder, as `igkit explain` writes it (zip)",
                              elem_id=f"{name}-download", interactive=False)
    with gr.Accordion("All files of the item", open=False):
        out["file_choice"] = gr.Dropdown(choices=[], label="File", elem_id=f"{name}-files")
        out["file_table"] = gr.Dataframe(visible=False, interactive=False, max_height=400)
        out["file_json"] = gr.JSON(visible=False)
        out["file_text"] = gr.Code(visible=False, language=None)
    return out


def build_tab(gr: Any, service: DomainService) -> None:
    """The tab of one domain (call inside ``gr.Blocks``)."""
    view, domain = service.view, service.domain
    name = domain.name
    with gr.Tab(getattr(view, "title", None) or name, id=name, elem_id=f"tab-{name}"):
        if view.intro:
            gr.Markdown(view.intro)
        with gr.Row():
            with gr.Column(scale=2, min_width=300):
                ins = _input_column(gr, service)
            with gr.Column(scale=3, min_width=400):
                out = _result_column(gr, name)
        out["token"] = gr.State(None)
        out["target"] = ins["target"]
        keys = [c.key for c in view.custom_inputs]
        settings = [c.setting for c in service.path_choices]

        def on_run(value, model_label, target_choice, method_names, n_steps, tol, budget, alpha_value, *rest,
                   progress=gr.Progress()):
            custom, picked = dict(zip(keys, rest[:len(keys)])), dict(zip(settings, rest[len(keys):]))
            try:
                result = service.run(value if view.input_kind != "image" else None,
                                     value if view.input_kind == "image" else None, model=model_label,
                                     target=target_choice, methods=method_names or (), steps=n_steps,
                                     tolerance=tol, choices=picked, custom=custom, budget_s=budget,
                                     report=lambda fraction, text: progress(fraction, desc=text))
                updates = result_updates(gr, service, result, _alpha(alpha_value), target_choice)
            except Exception as exc:  # noqa: BLE001 - the page always gets a sentence, never a bare badge
                return error_updates(gr, _short_error(exc)) + [gr.update(choices=[], value=None)]
            names = [p.name for p in table_files(result.folder)] if result.ok else []
            return updates + [gr.update(choices=names, value=None)]

        inputs = [ins["item"], ins["model"], ins["target"], ins["methods"], ins["steps"], ins["tolerance"],
                  ins["budget"], out["alpha"], *ins["custom"], *ins["path"]]
        outputs = [out[k] for k in RESULT_OUTPUTS] + [out["file_choice"]]
        ins["run"].click(on_run, inputs=inputs, outputs=outputs, concurrency_limit=CONCURRENCY,
                         concurrency_id=f"model-{name}", api_name=f"{name}_explain")
        if view.input_kind != "image":
            ins["item"].submit(on_run, inputs=inputs, outputs=outputs, concurrency_limit=CONCURRENCY,
                               concurrency_id=f"model-{name}", api_visibility="private")
        else:
            ins["item"].change(lambda path: _preview(gr, service, path), inputs=[ins["item"]],
                               outputs=[ins["preview"], out["message"], ins["item"]], api_visibility="private")
        _wire_alpha(gr, service, out)
        choosing = [ins["model"], *ins["custom"]]
        for box in choosing:  # the note says which model a run will use
            box.change(lambda label, *custom: _model_note(service, label, custom), inputs=choosing,
                       outputs=[ins["model_note"]], api_visibility="private")
        _wire_files(gr, service, out)


def _preview(gr: Any, service: DomainService, path: str | None) -> tuple[Any, Any, Any]:
    """Show an uploaded picture; a file that is not one is said at once, in a sentence, and removed
    so the next upload can follow (preview, message, upload field)."""
    if not path:
        return None, gr.update(), gr.update()
    try:
        from PIL import Image

        from igkit.app.service import uploaded_file

        with Image.open(uploaded_file(path, service.upload_roots, "picture")) as probe:
            probe.thumbnail((512, 512))
            shown = probe.convert("RGB")
        if max(shown.size) < 128:  # a 32×32 digit: enlarged with sharp pixels
            factor = 192 // max(shown.size)
            shown = shown.resize((shown.width * factor, shown.height * factor), Image.Resampling.NEAREST)
        return shown, "", gr.update()
    except IgkitError as exc:
        return None, error_html(str(exc)), None
    except Exception:  # noqa: BLE001 - Pillow's many ways of saying "not a picture"
        return None, error_html(f"the file you uploaded ({Path(path).name}) is not a picture this app can read: "
                                f"upload a PNG, JPEG, GIF, BMP, TIFF or WebP image"), None


def _model_note(service: DomainService, label: str, custom: tuple[Any, ...] = ()) -> str:
    """The chosen model's note; once a field of "Your own model" is filled, that it replaces the choice."""
    if any(value not in (None, "") and str(value).strip() for value in custom):
        return ("**Your own model** (given below) replaces this choice: the result names it and says what "
                "igkit cannot know about it.")
    try:
        return service.choice(label).note
    except IgkitError as exc:
        return escape_markdown(str(exc))


def _wire_alpha(gr: Any, service: DomainService, out: dict[str, Any]) -> None:
    name = service.domain.name

    def on_alpha(token_value, alpha_value):
        if not token_value:  # nothing run yet: the slider just moves
            return gr.update(), gr.update(), gr.update()
        try:
            curve_picture, gradient_picture = service.interior(token_value, _alpha(alpha_value))
        except Exception as exc:  # noqa: BLE001 - the page says why; the app keeps serving
            return gr.update(), gr.update(), error_html(_short_error(exc))
        return curve_picture, gradient_picture, gr.update()

    out["alpha"].change(on_alpha, inputs=[out["token"], out["alpha"]],
                        outputs=[out["curve"], out["gradient"], out["message"]], concurrency_limit=CONCURRENCY,
                        concurrency_id=f"model-{name}", api_name=f"{name}_alpha", trigger_mode="always_last",
                        show_progress="minimal")


def _wire_files(gr: Any, service: DomainService, out: dict[str, Any]) -> None:
    def on_file(token_value, file_name):
        hidden = gr.update(value=None, visible=False)
        if not file_name:
            return hidden, hidden, hidden
        try:
            folder = service.result(token_value).folder
        except IgkitError:
            return hidden, hidden, hidden
        path = next((p for p in table_files(folder) if p.name == file_name), None)  # never a free path
        if path is None:
            return hidden, hidden, hidden
        kind, content = read_file_view(path)
        if kind == "table":
            return _table_update(gr, content), hidden, hidden
        if kind == "json":
            return hidden, gr.update(value=content, visible=True, label=file_name), hidden
        return hidden, hidden, gr.update(value=content, visible=True, label=file_name)

    out["file_choice"].change(on_file, inputs=[out["token"], out["file_choice"]],
                              outputs=[out["file_table"], out["file_json"], out["file_text"]],
                              api_visibility="private")
