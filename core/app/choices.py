"""What a person may choose in a tab besides the item: the baseline and the score (the domain's
declared settings marked as app controls, :mod:`igkit.settings`, so the app offers exactly what
``igkit <domain> explain`` offers), and a model of their own (files or a folder, declared by the
domain's view).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from igkit.errors import IGInputError


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
    """The domain's declared app controls (its baseline and score, where it has them), as choices."""
    from igkit.settings import controls

    return [PathChoice(s.name, str(s.control), tuple(str(c) for c in s.choices or ()), str(s.default), s.help)
            for s in controls(getattr(domain, "settings_class", None))]


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
