"""Running a domain end to end over many items: attribution, files, and per-item failures
that never lose the other items' results."""
from __future__ import annotations

import csv
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .domain import Domain
from .errors import IGInputError, NonFiniteError
from .integrated import integrated_gradients
from .progress import progress
from .result import IGResult

#: what a bad item may raise without stopping the rest of the batch
ITEM_ERRORS = (IGInputError, NonFiniteError, OSError, ValueError)


def write_summary(out_dir: str | Path, result: IGResult, *, target: Any, seconds: float,
                  example: int = 0, extra: dict[str, Any] | None = None) -> Path:
    """Write ``summary.json``: target, scores, attribution sum, completeness, steps, method, time."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"target": target, **result.summary(example), "seconds": round(float(seconds), 4)}
    summary.update(extra or {})
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
    return path


def write_vector_csv(path: str | Path, values: np.ndarray, header: tuple[str, str] = ("index", "value")
                     ) -> Path:
    """A flat CSV of one importance vector."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows((i, f"{float(v):.8g}") for i, v in enumerate(np.ravel(values)))
    return path


@dataclass
class ExplainReport:
    """What happened to each item: where its outputs are, or why it was skipped."""

    written: dict[str, Path] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def write(self, out_dir: Path) -> Path:
        path = out_dir / "report.json"
        path.write_text(json.dumps({"written": {k: str(v) for k, v in self.written.items()},
                                    "failed": self.failed}, indent=2) + "\n")
        return path


def explain_items(domain: Domain, model: Any, items: Iterable[str], out_dir: str | Path, *,
                  show_progress: bool = True, **ig_options: Any) -> ExplainReport:
    """Explain each item with ``domain`` into ``out_dir/<item name>/``; bad items are reported."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = ExplainReport()
    items = list(items)
    for item in progress(items, desc=f"explain {domain.name}", enabled=show_progress):
        try:
            report.written[item] = explain_one(domain, model, item, out, **ig_options)
        except ITEM_ERRORS as exc:
            report.failed[item] = f"{type(exc).__name__}: {exc}"
    report.write(out)
    return report


def explain_one(domain: Domain, model: Any, item: str, out_dir: Path, **ig_options: Any) -> Path:
    """Attribute one item and write its summary, result, importance CSVs and pictures."""
    prepared = domain.prepare(model, item)
    start = time.perf_counter()
    result = integrated_gradients(prepared.forward, prepared.inputs, prepared.baselines,
                                  target=prepared.target, forward_args=prepared.forward_args,
                                  **ig_options)
    seconds = time.perf_counter() - start
    item_dir = out_dir / safe_name(prepared.name)
    item_dir.mkdir(parents=True, exist_ok=True)
    result.save(item_dir / "result.npz")
    for name, values in domain.importance(result, prepared).items():
        write_vector_csv(item_dir / f"importance_{safe_name(name)}.csv", values)
    domain.render(result, prepared, item_dir)
    write_summary(item_dir, result, target=prepared.label or _json_default(prepared.target),
                  seconds=seconds, extra={"item": item, "domain": domain.name})
    return item_dir


def safe_name(name: str) -> str:
    """A file-system-safe version of an item's name."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned[:80] or "item"


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else repr(value)
