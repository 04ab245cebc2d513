"""The web app: one tab per installed domain, served by Gradio on 127.0.0.1 unless told otherwise.

Uploads go to a temporary folder this process creates (Gradio's ``GRADIO_TEMP_DIR``);
the app opens uploaded files only from there, never a path the browser names, and
deletes the folder when it stops. Requests are queued: each domain's events share one
queue slot and each model has a lock, so one model call runs at a time per model.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

from igkit.app.budget import DEFAULT_BUDGET_S
from igkit.app.html import PICTURE_GRID_CSS
from igkit.app.service import MAX_MODEL_BYTES, DomainService
from igkit.errors import IGInputError

#: requests waiting in the queue at most (more get "the queue is full")
MAX_QUEUE = 32

CSS = """
.igkit-error { color: #b00020; background: #fdecee; border: 1px solid #f5c2c7; padding: 8px 12px;
               border-radius: 6px; }
.igkit-legend-line { font-size: 90%; color: #333; }
""" + PICTURE_GRID_CSS


def work_root() -> Path:
    """A fresh temporary folder for uploads and results, removed when the process ends."""
    root = Path(tempfile.mkdtemp(prefix="igkit-app-"))
    atexit.register(shutil.rmtree, root, True)
    return root


def make_services(root: Path, names: Sequence[str] | None = None,
                  models: dict[str, list[str]] | None = None,
                  budget_s: float = DEFAULT_BUDGET_S) -> list[DomainService]:
    """A :class:`DomainService` per installed domain (or the ``names`` given), in name order."""
    from igkit.plugin_manager import domains

    installed = domains()
    wanted = list(names) if names else sorted(installed)
    unknown = [n for n in wanted if n not in installed]
    if unknown:
        raise IGInputError(f"no installed domain {unknown[0]!r}; installed: {', '.join(sorted(installed)) or 'none'}")
    models = models or {}
    stray = sorted(set(models) - set(wanted))
    if stray:
        raise IGInputError(f"--model names domain {stray[0]!r}, which has no tab; tabs: {', '.join(wanted)}")
    uploads = upload_dir(root)
    return [DomainService(installed[n], models.get(n, []), workdir=root / n, upload_roots=[uploads],
                          budget_s=budget_s) for n in wanted]


def upload_dir(root: Path) -> Path:
    """Where Gradio puts uploads (and its cache) in this process."""
    path = root / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_app(services: Sequence[DomainService], title: str = "igkit: attributions") -> Any:
    """The Gradio Blocks app with one tab per service."""
    import gradio as gr

    from igkit.app.tabs import build_tab

    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# igkit: explore attributions\nEach tab runs the same explain path as "
                    "`igkit <domain> explain` and offers the same item folder for download. "
                    "Uploads stay in a temporary folder of this server and are deleted when it stops.")
        with gr.Tabs():
            for service in services:
                build_tab(gr, service)
    demo.queue(max_size=MAX_QUEUE, default_concurrency_limit=1)
    return demo


def launch(demo: Any, host: str = "127.0.0.1", port: int | None = None, *,
           block: bool = True, quiet: bool = False) -> Any:
    """Serve ``demo``; returns Gradio's (app, local url, share url) when ``block`` is False."""
    return demo.launch(server_name=host, server_port=port, share=False, inbrowser=False,
                       prevent_thread_lock=not block, quiet=quiet, show_error=False,
                       max_file_size=MAX_MODEL_BYTES,
                       footer_links=[], css=CSS, ssr_mode=False, mcp_server=False)


def prepare_environment(root: Path) -> None:
    """Gradio settings that must be in place before it is imported: uploads into ``root``,
    no analytics calls, no check for a newer version (the machine may have no network)."""
    os.environ["GRADIO_TEMP_DIR"] = str(upload_dir(root))
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("GRADIO_SERVER_NAME", "127.0.0.1")
    os.environ["HF_HUB_OFFLINE"] = os.environ.get("HF_HUB_OFFLINE", "1")
