"""Hook specifications: the whole contract between igkit and a plugin.

A plugin is any module or object implementing some of these hooks, registered
under the ``igkit`` entry-point group (built-in plugins register the same way).
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from igkit.domain import Domain
    from igkit.methods.protocol import AttributionMethod

PROJECT = "igkit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def igkit_domains() -> list["Domain"]:
    """Return the domains (model loading, input preparation, rendering) this plugin adds."""


@hookspec
def igkit_methods() -> dict[str, "AttributionMethod"]:
    """Return extra attribution methods by name; they join :data:`igkit.methods.registry.METHODS`."""


@hookspec
def igkit_add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``igkit <name> ...`` subcommands; set ``func`` on each parser via ``set_defaults``."""
