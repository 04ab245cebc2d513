"""Entry point of the vision plugin: the ``vision`` domain and the ``igkit vision`` commands
(light: torchvision and matplotlib are imported only when a command runs)."""
from __future__ import annotations

import argparse

from igkit import Domain, hookimpl

from .cli import add_commands
from .domain import VisionDomain


@hookimpl
def igkit_domains() -> list[Domain]:
    return [VisionDomain()]


@hookimpl
def igkit_add_commands(subparsers: argparse._SubParsersAction) -> None:
    add_commands(subparsers)
