"""``igkit app``: a local web app over the one explain path (Gradio, in the extra ``igkit[app]``).

:mod:`igkit.app.views` and :mod:`igkit.app.service` hold everything that is not Gradio
(inputs → outputs, testable without a browser); :mod:`igkit.app.tabs` and
:mod:`igkit.app.server` build and serve the page; :mod:`igkit.app.command` registers
``igkit app``. Importing this package imports none of them.
"""
from __future__ import annotations

from pathlib import Path


def examples_dir() -> Path:
    """The example pictures shipped with the app (scikit-image sample images, see LICENSE.md there)."""
    return Path(__file__).resolve().parent / "examples"
