"""What a person may choose in a tab besides the item: the baseline and the score (read from the
domain's own command-line options, so the app offers exactly what ``igkit <domain> explain``
offers), and a model of their own (files or a folder, declared by the domain's view).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Sequence

from igkit.errors import IGInputError

#: the settings offered as choices in every tab that has them, with the label people see
PATH_SETTINGS = (("baseline", "Baseline (where the path starts)"), ("score", "Score explained"))


@dataclass(frozen=True)
class PathChoice:
    """One choice of a tab: the domain setting it sets, its options, default and help."""

    setting: str
    label: str
    options: tuple[str, ...]
    default: str
    help: str = ""


@dataclass(frozen=True)
class CustomInput:
    """A field for the user's own model: ``kind`` "file" (an upload) or "text" (a folder path or name)."""

    key: str
    kind: str
    label: str
    info: str = ""


def path_choices(domain: Any) -> list[PathChoice]:
    """The domain's ``--baseline`` and ``--score`` options (those it has), as choices."""
    parser = argparse.ArgumentParser(add_help=False)
    domain.add_arguments(parser)
    found = {action.dest: action for action in parser._actions}  # noqa: SLF001 - argparse has no public list
    choices = []
    for setting, label in PATH_SETTINGS:
        action = found.get(setting)
        if action is None or not action.choices:
            continue
        choices.append(PathChoice(setting, label, tuple(str(c) for c in action.choices), str(action.default),
                                  (action.help or "").replace("%(default)s", str(action.default))))
    return choices


def chosen_settings(choices: Sequence[PathChoice], values: dict[str, str | None]) -> dict[str, str]:
    """The settings for the values picked (empty: the default); an unknown value is refused."""
    settings = {}
    by_setting = {c.setting: c for c in choices}
    for setting, value in values.items():
        if value in (None, ""):
            continue
        choice = by_setting.get(setting)
        if choice is None:
            raise IGInputError(f"this tab has no {setting} choice")
        if value not in choice.options:
            raise IGInputError(f"{value!r} is not a {setting} this domain offers; choose one of "
                               f"{', '.join(choice.options)}")
        settings[setting] = value
    return settings
