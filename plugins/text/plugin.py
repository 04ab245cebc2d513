"""Entry point of the text plugin: the ``igkit text`` commands and the ``text`` domain."""
from __future__ import annotations

import argparse

from igkit import hookimpl
from igkit.domain import Domain


@hookimpl
def igkit_add_commands(subparsers: argparse._SubParsersAction) -> None:
    from .cli import add_commands

    add_commands(subparsers)


@hookimpl
def igkit_domains() -> list[Domain]:
    from .domain import TextDomain

    return [TextDomain()]
