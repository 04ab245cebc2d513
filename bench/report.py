"""The result rows, the printed table and the JSON file, with the machine they came from."""
from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass
class Row:
    """One measured ratio: igkit's number, the reference's, and whether the goal is met.

    ``lower_is_better`` says which way the goal points: overheads and memory are
    ceilings (≤ goal), speed-ups are floors (≥ goal). The goal applies to the
    ratio, or with ``goal_on_igkit`` to igkit's own number (memory: ≤ 3 GiB).
    """

    case: str
    metric: str
    igkit: float
    reference: float
    reference_name: str
    ratio: float
    goal: float
    lower_is_better: bool
    unit: str
    details: dict[str, Any] = field(default_factory=dict)
    goal_on_igkit: bool = False
    #: why a goal cannot be met here, with the numbers (printed under the table when it is missed)
    why_missed: str = ""

    @property
    def met(self) -> bool:
        value = self.igkit if self.goal_on_igkit else self.ratio
        if math.isnan(value):
            return False
        return value <= self.goal if self.lower_is_better else value >= self.goal

    @property
    def goal_text(self) -> str:
        sign = "≤" if self.lower_is_better else "≥"
        return f"igkit {sign} {self.goal:g} {self.unit}" if self.goal_on_igkit else f"{sign} {self.goal:g}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met, "goal_text": self.goal_text}


@dataclass
class Skipped:
    """A case that could not run, and why (a plugin or data set that is not there)."""

    case: str
    reason: str


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "nproc": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform()}


def _number(value: float, unit: str) -> str:
    if math.isnan(value):
        return "n/a"
    if unit == "s":
        return f"{value:.3g} s"
    if unit == "GiB":
        return f"{value:.2f} GiB"
    return f"{value:.4g} {unit}".strip()


HEADER = ("case", "igkit", "reference", "ratio", "goal", "met?")


def _cells(r: Row) -> tuple[str, ...]:
    reference = f"{_number(r.reference, r.unit)} ({r.reference_name})"
    return (f"{r.case}: {r.metric}", _number(r.igkit, r.unit), reference,
            "n/a" if math.isnan(r.ratio) else f"{r.ratio:.3g}", r.goal_text, "yes" if r.met else "NO")


def _reasons(rows: list[Row], skipped: list[Skipped]) -> list[str]:
    """Why each missed goal was missed, once: a model's rows share their reasons (its gradient
    evaluations and its seconds are explained by the same note)."""
    missed = [f"{r.case} ({r.metric.split(':')[0]}) missed: {r.why_missed}" for r in rows
              if r.why_missed and not r.met]
    return list(dict.fromkeys(missed)) + [f"{s.case}: skipped: {s.reason}" for s in skipped]


def format_markdown(rows: list[Row], skipped: list[Skipped]) -> str:
    """The same table in Markdown, with the reasons for missed goals as a list below it."""
    out = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    out += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(out + [""] + [f"- {line}" for line in _reasons(rows, skipped)]) + "\n"


def format_table(rows: list[Row], skipped: list[Skipped]) -> str:
    """A plain-text table: case | igkit | reference | ratio | goal | met?"""
    header = HEADER
    lines = [_cells(r) for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
              for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    return "\n".join(out + _reasons(rows, skipped))


def write_json(path: Path, rows: list[Row], skipped: list[Skipped], settings: dict[str, Any],
               seconds: float) -> None:
    """Everything measured, plus the settings and machine, as one JSON document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"machine": machine(), "settings": settings, "total_seconds": round(seconds, 1),
                "results": [r.to_dict() for r in rows],
                "skipped": [asdict(s) for s in skipped]}
    path.write_text(json.dumps(document, indent=2, default=float) + "\n")
