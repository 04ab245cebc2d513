"""A domain's explain settings, declared once as a dataclass, and everything derived from it.

Each field of the declaration carries its default, help, choices, limits and command-line flags
(:func:`setting`). From that one declaration come the ``igkit <domain> explain`` options
(:func:`add_options`), the validated settings of a command line (:func:`from_namespace`) or of the
Python API's keywords (:func:`from_keywords`), the ``settings`` written to ``run.json``, the web
app's choices (:func:`controls`) and the option table of the domain's README
(:func:`markdown_rows`). So the README, ``--help``, the API and the app cannot disagree.

A field marked ``source=True`` (an ``--input FILE``) is an option but no setting: it says what is
read, not how, so the same lines read from another file resume the same run.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Collection, Mapping

from igkit.errors import IGInputError

#: the key under which :func:`setting` stores its :class:`Setting` in a field's metadata
_KEY = "igkit_setting"


@dataclass(frozen=True)
class Setting:
    """One declared setting: what a person may choose, how it is spelled and checked."""

    name: str
    default: Any
    flags: tuple[str, ...]
    help: str
    type: type | tuple[type, ...]
    item: type | None = None
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    count: int | None = None
    repeat: bool = False
    parse: Callable[[str], Any] | None = None
    source: bool = False
    only_if_set: bool = False
    control: str | None = None
    group: str | None = None
    metavar: str | tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return self.flags[0]

    @property
    def kinds(self) -> tuple[type, ...]:
        """The types one value may have (a list's items for a list setting)."""
        kind = self.item if self.type in (list, tuple) else self.type
        return kind if isinstance(kind, tuple) else (kind,)

    def outside(self, value: Any) -> bool:
        """Whether a number is below ``minimum`` or above ``maximum``."""
        return (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum)

    @property
    def is_flag(self) -> bool:
        """A switch (``--shared-scale``): given or not, no value."""
        return self.type is bool

    def shown_default(self) -> str:
        """The default as ``--help`` and the README write it: ``none``, ``off`` or the value."""
        value = self.default
        if self.is_flag:
            return "on" if value else "off"
        if value is None or value == "" or value == () or value == []:
            return "none"
        if isinstance(value, (list, tuple)):
            return " ".join(str(v) for v in value)
        return str(value)

    def check(self, value: Any) -> Any:
        """``value`` as a JSON value, or an ``IGInputError`` saying what this setting allows."""
        if isinstance(value, str) and self.parse is not None and self.type is not str:
            value = self.parse(value)
        if value is None:
            if self.default is None:
                return None
            raise IGInputError(f"{self.name} may not be None; {self._allowed()}")
        if self.type in (list, tuple):
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
                raise IGInputError(f"{self.name} must be a list, got {value!r}; {self._allowed()}")
            values = [self._one(v) for v in value]
            if self.count is not None and len(values) != self.count:
                raise IGInputError(f"{self.name} needs {self.count} values, got {len(values)}; {self._allowed()}")
            return values
        return self._one(value)

    def _one(self, value: Any) -> Any:
        kinds = self.kinds
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise IGInputError(f"{self.name}={value!r} has type {type(value).__name__}; {self._allowed()}")
        if self.choices is not None and value not in self.choices:
            raise IGInputError(f"{self.name}={value!r} is not offered; {self._allowed()}")
        if self.outside(value):
            raise IGInputError(f"{self.name}={value!r} is out of range; {self._allowed()}")
        return value

    def _allowed(self) -> str:
        """What this setting takes, in words (every refusal ends with it)."""
        if self.choices is not None:
            return f"{self.name} is one of {', '.join(map(str, self.choices))}"
        names = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
        what = " or ".join(names.get(k, k.__name__) for k in self.kinds)
        if self.type in (list, tuple):
            what = f"a list of {self.count or 'any number of'} × {what}"
        return f"{self.name} takes {what}{_range(self.minimum, self.maximum)}" + (
            " or None" if self.default is None else "")

    def argument_type(self, text: str) -> Any:
        """argparse's ``type``: the text of one value, parsed and checked as the CLI's error says."""
        if self.parse is not None:
            return self.parse(text)
        if str in self.kinds:
            return text
        whole = int in self.kinds
        expected = f"expected {'a whole number' if whole else 'a number'}{_range(self.minimum, self.maximum)}"
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{expected}, got {text!r}") from None
        if self.outside(value):
            raise argparse.ArgumentTypeError(f"{expected}, got {value}")
        return value


def setting(default: Any, *flags: str, help: str, type: type | tuple[type, ...] | None = None,
            item: type | None = None, choices: tuple[Any, ...] | None = None, minimum: float | None = None,
            maximum: float | None = None, count: int | None = None, repeat: bool = False,
            parse: Callable[[str], Any] | None = None, source: bool = False, only_if_set: bool = False,
            control: str | None = None, group: str | None = None,
            metavar: str | tuple[str, ...] | None = None) -> Any:
    """A field of a settings declaration.

    ``flags``: the option's names (the first is shown; default ``--<name>``); ``type``: the value's
    type (default: the default's; ``list``/``tuple`` with ``item`` for lists); ``choices``,
    ``minimum``/``maximum`` (inclusive): what is allowed; ``count``: values per option (``--clip LOW
    HIGH``); ``repeat``: the option may be given again to add a value; ``parse``: text → value for
    values not spelled as one number or word (``--layers a,b``); ``source``: what is read, not part
    of the settings; ``only_if_set``: in ``run.json`` only when not the default (a new setting keeps
    earlier runs' ids); ``control``: the web app offers it, under this label; ``group``: the
    ``--help`` section.
    """
    if type is None:
        type = builtin_type(default)
    spec = dict(flags=tuple(flags), help=" ".join(help.split()), type=type, item=item,
                choices=None if choices is None else tuple(choices), minimum=minimum, maximum=maximum,
                count=count, repeat=repeat, parse=parse, source=source, only_if_set=only_if_set,
                control=control, group=group, metavar=metavar)
    return dataclasses.field(default=default, metadata={_KEY: spec})


def builtin_type(default: Any) -> type:
    """The type a setting without ``type=`` has: its default's (``None`` defaults are text)."""
    return str if default is None else type(default)


def declared(declaration: type) -> list[Setting]:
    """Every setting of ``declaration`` (sources included), in declaration order."""
    if not dataclasses.is_dataclass(declaration):
        raise TypeError(f"{declaration!r} is not a dataclass of settings (see igkit.settings.setting)")
    found = []
    for f in dataclasses.fields(declaration):
        if _KEY not in f.metadata:
            raise TypeError(f"{declaration.__name__}.{f.name} is not declared with igkit.settings.setting")
        spec = dict(f.metadata[_KEY])
        flags = spec.pop("flags") or (f"--{f.name.replace('_', '-')}",)
        found.append(Setting(name=f.name, default=f.default, flags=flags, **spec))
    return found


def add_options(parser: argparse.ArgumentParser, declaration: type, title: str,
                names: Collection[str] | None = None) -> None:
    """The declared settings (or only those ``names``) as options of ``parser``, in sections
    (``group`` or ``title``); each help ends with its default, once."""
    groups: dict[str, Any] = {}
    for s in declared(declaration):
        if names is not None and s.name not in names:
            continue
        name = s.group or title
        if name not in groups:
            groups[name] = parser.add_argument_group(name)
        group = groups[name]
        shown = f"{s.help} (default: {s.shown_default()})".replace("%", "%%")
        if s.is_flag:
            group.add_argument(*s.flags, dest=s.name, action="store_true", help=shown)
            continue
        options: dict[str, Any] = dict(dest=s.name, help=shown, type=s.argument_type, metavar=s.metavar,
                                       default=None if s.repeat else s.default)
        if s.choices is not None:
            options["choices"] = s.choices
        if s.count is not None:
            options["nargs"] = s.count
        if s.repeat:
            options["action"] = "append"
        group.add_argument(*s.flags, **options)


def from_namespace(declaration: type, args: argparse.Namespace) -> dict[str, Any]:
    """The settings of parsed options, checked, as JSON values (an option the command lacks keeps
    its default)."""
    values = {}
    for s in declared(declaration):
        if not s.source:
            value = getattr(args, s.name, s.default)
            values[s.name] = s.default if (s.repeat and not value) else value
    return _as_json(declaration, values)


def from_keywords(declaration: type, owner: str, **values: Any) -> dict[str, Any]:
    """The settings of the Python API's keywords over the declared defaults, checked, as JSON
    values. An unknown name, or a value out of the choices or limits, is an ``IGInputError``."""
    settings = {s.name: s for s in declared(declaration)}
    valid = sorted(n for n, s in settings.items() if not s.source)
    for name in values:
        if name not in settings:
            raise IGInputError(f"{owner} has no setting {name!r}; its settings are {', '.join(valid) or 'none'}")
        if settings[name].source:
            raise IGInputError(f"{name!r} says what {owner} reads, not how: give it among the items")
    merged = {n: s.default for n, s in settings.items() if not s.source}
    return _as_json(declaration, {**merged, **values})


def _as_json(declaration: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """Checked JSON values in declaration order; ``only_if_set`` settings at their default left out."""
    found = {}
    for s in declared(declaration):
        if s.source:
            continue
        value = s.check(values[s.name])
        if s.only_if_set and value == s.check(s.default):
            continue
        found[s.name] = value
    return found


def controls(declaration: type | None) -> list[Setting]:
    """The settings the web app offers as choices (declared with ``control=`` and ``choices``)."""
    if declaration is None:
        return []
    return [s for s in declared(declaration) if s.control and s.choices and not s.source]


def markdown_rows(declaration: type) -> list[str]:
    """The README option table's rows of the declared settings: option, default, what."""
    rows = []
    for s in declared(declaration):
        what = s.help.replace("|", "\\|")      # a table cell's own bars, escaped
        rows.append(f"| `{s.flag}` | `{s.shown_default()}` | {what} |")
    return rows


def with_declared_rows(text: str, declaration: type, command: str) -> str:
    """``text`` (a README) with each row of a declared option in the table headed ``| `command`
    option |`` replaced by its declared row; a README whose rows are current comes back unchanged."""
    rows = {row.split("`")[1]: row for row in markdown_rows(declaration)}
    lines = text.split("\n")
    header = f"| `{command}` option |"
    inside = False
    for number, line in enumerate(lines):
        if line.startswith(header):
            inside = True
        elif inside and not line.startswith("|"):
            inside = False
        elif inside and line.startswith("| `--"):
            lines[number] = rows.get(line.split("`")[1], line)
    return "\n".join(lines)


def _range(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {_number(minimum)} to {_number(maximum)}"
    if minimum is not None:
        return f" ≥ {_number(minimum)}"
    if maximum is not None:
        return f" ≤ {_number(maximum)}"
    return ""


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"
