"""Entry point of the molecules plugin: the ``igkit molecules`` commands and the ``molecules`` domain."""
from __future__ import annotations

import argparse

from igkit import hookimpl
from igkit.domain import Domain

from .cli import add_commands


@hookimpl
def igkit_add_commands(subparsers: argparse._SubParsersAction) -> None:
    add_commands(subparsers)


@hookimpl
def igkit_domains() -> list[Domain]:
    from .domain import MoleculesDomain

    return [MoleculesDomain()]
