"""A third-party igkit plugin, as someone outside the project would write it.

Items are comma-separated numbers; the model is a fixed linear scorer, so the
right attributions are known exactly: (x − 0)·w.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

import igkit
from igkit.domain import Domain, Prepared

__version__ = "0.3.1"
WEIGHTS = torch.tensor([2.0, -1.0, 0.5])


class NumbersDomain(Domain):
    name = "numbers"
    description = "comma-separated numbers scored by a fixed linear model"

    def load_model(self, source: str | None, **settings):
        return WEIGHTS if source is None else torch.tensor([float(v) for v in source.split(",")])

    def prepare(self, model, item: str, **settings) -> Prepared:
        try:
            values = [float(v) for v in item.split(",")]
        except ValueError:
            raise igkit.IGInputError(f"{item!r} is not a list of comma-separated numbers") from None
        if len(values) != model.numel():
            raise igkit.IGInputError(f"{item!r} has {len(values)} numbers; the model takes {model.numel()}")
        return Prepared(name=item, inputs=torch.tensor([values]), forward=lambda v: v @ model,
                        label="score", group=len(values))

    def render(self, result, prepared, out_dir: Path) -> list[Path]:
        path = out_dir / "bars.txt"
        path.write_text(" ".join(f"{v:.3f}" for v in result.attributions[0].tolist()) + "\n")
        return [path]


def double(forward, inputs, baselines=None, *, target=None, **options):
    """Twice the gradient × input (a toy method)."""
    return 2 * igkit.attribute("grad_x_input", forward, inputs, baselines, target=target, **options)


@igkit.hookimpl
def igkit_domains():
    return [NumbersDomain()]


@igkit.hookimpl
def igkit_methods():
    return {"double_gxi": double}


@igkit.hookimpl
def igkit_add_commands(subparsers: argparse._SubParsersAction):
    from igkit.cli.commands import add_domain_group

    commands = add_domain_group(subparsers, NumbersDomain(), help="toy commands")
    parser = commands.add_parser("sum", help="add the numbers up")
    parser.add_argument("values", help="comma-separated numbers")
    parser.set_defaults(func=lambda args: print(sum(float(v) for v in args.values.split(","))) or 0)
