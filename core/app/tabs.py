"""One Gradio tab per domain, built from its :class:`~igkit.app.service.DomainService`.

The tab is the same for every domain: input (text box or picture upload), model, what to
explain, method and integration options, then the result — message, summary numbers,
top predictions, highlighted words, featured pictures and tables, the α slider (score
along the path with a marker, and the gradient there), the download, and every file the
domain wrote. A domain's :class:`~igkit.app.views.AppView` decides what fills them.

Gradio is imported only here and in :mod:`igkit.app.server` (``igkit app`` runs them).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import IgkitError
from .service import DomainService, Result
from .views import Table, read_file_view, table_files

#: event functions of one domain share one queue slot: one model call at a time per model
CONCURRENCY = 1


def method_choices(domain: Any = None) -> list[str]:
    """Methods computed beside integrated gradients (which is always computed), less those the
    domain declares unavailable."""
    from ..methods import METHODS, refresh_plugin_methods

    refresh_plugin_methods()
    unavailable = getattr(domain, "unavailable_methods", None) or {}
    return sorted(name for name in METHODS if name != "integrated_gradients" and name not in unavailable)


def error_markdown(message: str) -> str:
    return f"<div class='igkit-error'>⚠️ <b>Error:</b> {_escape(message)}</div>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _table_update(gr: Any, table: Table | None) -> Any:
    if table is None:
        return gr.update(value=None, visible=False)
    width = max([len(table.headers)] + [len(r) for r in table.rows]) if table.rows or table.headers else 0
    headers = list(table.headers) + [""] * (width - len(table.headers))
    rows = [list(r) + [""] * (width - len(r)) for r in table.rows]
    return gr.update(value={"headers": headers, "data": rows}, label=table.title, visible=True)


def result_updates(gr: Any, service: DomainService, result: Result, alpha: float = 1.0,
                   target: str | None = None) -> list[Any]:
    """Values for the tab's outputs (order of :func:`build_tab`'s ``outputs``)."""
    if not result.ok:
        hidden = gr.update(value=None, visible=False)
        return [error_markdown(result.error), "", hidden, hidden, gr.update(value=[], visible=False),
                hidden, hidden, "", None, None, None, gr.update(), None]
    panels = result.panels
    pictures = [(p if not isinstance(p, Path) else str(p), caption) for p, caption in panels.pictures]
    tables = panels.tables + [None, None]
    label = (gr.update(value=panels.label, label=panels.label_title, visible=True) if panels.label
             else gr.update(value=None, visible=False))
    highlight = (gr.update(value=panels.highlight, label=panels.highlight_title, visible=True)
                 if panels.highlight else gr.update(value=None, visible=False))
    try:
        curve, gradient = service.interior(result.token, alpha)
    except Exception as exc:  # noqa: BLE001 - e.g. a stack of baselines: no single interior gradient
        curve, gradient = None, None
        panels.notes.append(f"α slider: {_short_error(exc)}")
    if panels.targets is not None:
        chosen = target if target else None
        choices = panels.targets + ([chosen] if chosen and chosen not in panels.targets else [])
        target_update = gr.update(choices=choices, value=chosen)
    else:
        target_update = gr.update()
    notes = "\n\n".join(panels.notes)
    message = f"Done in {result.seconds:.2f} s."
    return [message, result.summary_text, label, highlight,
            gr.update(value=pictures, visible=bool(pictures)), _table_update(gr, tables[0]),
            _table_update(gr, tables[1]), notes, curve, gradient, str(result.zip_path), target_update,
            result.token]


def _short_error(exc: Exception) -> str:
    if isinstance(exc, IgkitError):
        return str(exc)
    import traceback

    traceback.print_exc()
    return f"internal error ({type(exc).__name__}: {exc}); the server log has the details"


def _alpha(value: Any) -> float:
    try:
        return min(1.0, max(0.0, float(value)))
    except (TypeError, ValueError):
        return 1.0


def build_tab(gr: Any, service: DomainService) -> None:
    """The tab of one domain (call inside ``gr.Blocks``)."""
    view, domain = service.view, service.domain
    name = domain.name
    with gr.Tab(getattr(view, "title", None) or name, id=name, elem_id=f"tab-{name}"):
        if view.intro:
            gr.Markdown(view.intro)
        with gr.Row():
            with gr.Column(scale=2, min_width=300):
                if view.input_kind == "image":
                    item = gr.Image(type="filepath", sources=["upload"], label=view.input_label,
                                    elem_id=f"{name}-input", height=260)
                else:
                    item = gr.Textbox(label=view.input_label, placeholder=view.placeholder, lines=2,
                                      max_length=view.max_chars, elem_id=f"{name}-input")
                if view.examples:
                    gr.Examples(examples=[[e] for e in view.examples], inputs=[item],
                                label="Examples", examples_per_page=8)
                first = service.choices[0]
                model = gr.Dropdown(choices=[c.label for c in service.choices], value=first.label,
                                    label="Model", elem_id=f"{name}-model")
                model_note = gr.Markdown(first.note, elem_id=f"{name}-model-note")
                target = gr.Dropdown(choices=[], value=None, allow_custom_value=True,
                                     label=view.target_label or "Target", visible=view.target_label is not None,
                                     elem_id=f"{name}-target",
                                     info="empty: the model's top choice; the list fills after a run")
                with gr.Accordion("Method and integration", open=False):
                    methods = gr.Dropdown(choices=method_choices(domain), value=[], multiselect=True,
                                          label="Other methods (integrated gradients is always computed)",
                                          elem_id=f"{name}-methods")
                    steps = gr.Number(value=0, precision=0, minimum=0, maximum=2048,
                                      label="Steps (0: adaptive until the completeness error is within "
                                            "the tolerance)")
                    tolerance = gr.Number(value=domain.integration.tolerance, minimum=0, maximum=1,
                                          label="Tolerance (share of F(input) − F(baseline))")
                run = gr.Button("Explain", variant="primary", elem_id=f"{name}-run")
            with gr.Column(scale=3, min_width=400):
                message = gr.Markdown(elem_id=f"{name}-message")
                summary = gr.Markdown(elem_id=f"{name}-summary")
                label = gr.Label(num_top_classes=10, visible=False, elem_id=f"{name}-label")
                highlight = gr.HighlightedText(visible=False, show_legend=True, combine_adjacent=False,
                                               elem_id=f"{name}-highlight")
                gallery = gr.Gallery(label="Pictures", columns=2, height="auto", visible=False,
                                     elem_id=f"{name}-gallery", object_fit="contain")
                table1 = gr.Dataframe(visible=False, interactive=False, elem_id=f"{name}-table1",
                                      max_height=360)
                table2 = gr.Dataframe(visible=False, interactive=False, elem_id=f"{name}-table2",
                                      max_height=360)
                notes = gr.Markdown(elem_id=f"{name}-notes")
                with gr.Accordion("Along the path: drag α", open=True):
                    alpha = gr.Slider(0, 1, value=1.0, step=0.01, label="α (0 = baseline, 1 = input)",
                                      elem_id=f"{name}-alpha")
                    with gr.Row():
                        curve = gr.Image(label="score vs α", elem_id=f"{name}-curve", interactive=False)
                        gradient = gr.Image(label="gradient at α", elem_id=f"{name}-gradient",
                                            interactive=False)
                download = gr.File(label="Download: the item folder, as `igkit explain` writes it (zip)",
                                   elem_id=f"{name}-download", interactive=False)
                with gr.Accordion("All files of the item", open=False):
                    file_choice = gr.Dropdown(choices=[], label="File", elem_id=f"{name}-files")
                    file_table = gr.Dataframe(visible=False, interactive=False, max_height=400)
                    file_json = gr.JSON(visible=False)
                    file_text = gr.Code(visible=False, language=None)
        token = gr.State(None)

        def on_run(value, model_label, target_choice, method_names, n_steps, tol, alpha_value):
            result = service.run(value if view.input_kind != "image" else None,
                                 value if view.input_kind == "image" else None, model=model_label,
                                 target=target_choice, methods=method_names or (), steps=n_steps,
                                 tolerance=tol)
            updates = result_updates(gr, service, result, _alpha(alpha_value), target_choice)
            names = [p.name for p in table_files(result.folder)] if result.ok else []
            return updates + [gr.update(choices=names, value=None)]

        outputs = [message, summary, label, highlight, gallery, table1, table2, notes, curve, gradient,
                   download, target, token, file_choice]
        run.click(on_run, inputs=[item, model, target, methods, steps, tolerance, alpha], outputs=outputs,
                  concurrency_limit=CONCURRENCY, concurrency_id=f"model-{name}", api_name=f"{name}_explain")
        if view.input_kind != "image":
            item.submit(on_run, inputs=[item, model, target, methods, steps, tolerance, alpha], outputs=outputs,
                        concurrency_limit=CONCURRENCY, concurrency_id=f"model-{name}", api_visibility="private")

        def on_alpha(token_value, alpha_value):
            if not token_value:  # nothing run yet: the slider just moves
                return gr.update(), gr.update(), gr.update()
            try:
                curve_picture, gradient_picture = service.interior(token_value, _alpha(alpha_value))
            except Exception as exc:  # noqa: BLE001 - the page says why; the app keeps serving
                return gr.update(), gr.update(), error_markdown(_short_error(exc))
            return curve_picture, gradient_picture, gr.update()

        alpha.change(on_alpha, inputs=[token, alpha], outputs=[curve, gradient, message],
                     concurrency_limit=CONCURRENCY, concurrency_id=f"model-{name}", api_name=f"{name}_alpha",
                     trigger_mode="always_last", show_progress="minimal")

        def on_model(model_label):
            try:
                return service.choice(model_label).note
            except IgkitError as exc:
                return str(exc)

        model.change(on_model, inputs=[model], outputs=[model_note], api_visibility="private")

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

        file_choice.change(on_file, inputs=[token, file_choice], outputs=[file_table, file_json, file_text],
                           api_visibility="private")
