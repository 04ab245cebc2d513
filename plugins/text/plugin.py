"""Entry point of the text plugin: the ``igkit text`` commands and the ``text`` domain."""
from __future__ import annotations

import argparse

from igkit import hookimpl
from igkit.domain import Domain

from .commands import add_text_commands


@hookimpl
def igkit_add_commands(subparsers: argparse._SubParsersAction) -> None:
    add_text_commands(subparsers)


@hookimpl
def igkit_domains() -> list[Domain]:
    from .domain import TextDomain

    return [TextDomain()]
