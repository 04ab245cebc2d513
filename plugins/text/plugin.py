"""Entry point of the text plugin: registers the ``igkit text`` commands."""
from __future__ import annotations

import argparse

from igkit import hookimpl

from .commands import add_text_commands


@hookimpl
def igkit_add_commands(subparsers: argparse._SubParsersAction) -> None:
    add_text_commands(subparsers)
