"""CLI manners: README option tables agree with --help, a mistyped option gets "did you mean" from
its own command, no doubled "(default: …)", and documented exit codes."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from igkit.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
#: options whose default depends on the machine: the README says how it is chosen instead
COMPUTED = {"--threads"}
DOMAIN_READMES = {"molecules": ROOT / "plugins" / "molecules" / "README.md",
                  "text": ROOT / "plugins" / "text" / "README.md",
                  "vision": ROOT / "plugins" / "vision" / "README.md"}


def explain_parser(domain: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    group = sub.choices[domain]
    commands = next(a for a in group._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["explain"]


def shown_default(action: argparse.Action) -> str:
    """How a README table writes an option's default (the test compares these strings)."""
    value = action.default
    if action.required:
        return "required"
    if action.nargs == 0:
        return "off"
    if value is None or value == "" or value == []:
        return "none"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def option_rows(domain: str) -> list[tuple[str, str, str]]:
    """(option, default as the README writes it, help) of every option of ``igkit DOMAIN explain``."""
    rows = []
    for action in explain_parser(domain)._actions:
        long = [s for s in action.option_strings if s.startswith("--")]
        if not long or long[0] == "--help":
            continue
        default = ("usable cores, at most 4 (or $IGKIT_THREADS)" if long[0] in COMPUTED
                   else f"`{shown_default(action)}`")
        rows.append((long[0], default, " ".join((action.help or "").split()).replace("|", "\\|")))
    return rows


def table_markdown(domain: str) -> str:
    """The README table, as written by the maintainers from --help (and checked below)."""
    lines = [f"| `igkit {domain} explain` option | default | what |", "| --- | --- | --- |"]
    lines += [f"| `{o}` | {d} | {h} |" for o, d, h in option_rows(domain)]
    return "\n".join(lines)


def readme_table(text: str, domain: str) -> dict[str, str]:
    """Option → default cell of the README's ``igkit DOMAIN explain`` option table."""
    start = text.index(f"| `igkit {domain} explain` option | default |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("| `--"):
            break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows[cells[0].strip("`")] = cells[1]
    return rows


@pytest.mark.parametrize("domain", sorted(DOMAIN_READMES))
def test_readme_option_table_agrees_with_help(domain):
    table = readme_table(DOMAIN_READMES[domain].read_text(encoding="utf-8"), domain)
    expected = {option: default for option, default, _ in option_rows(domain)}
    missing = sorted(set(expected) - set(table))
    stale = sorted(set(table) - set(expected))
    assert not missing, f"{DOMAIN_READMES[domain].name} lacks options {missing}; --help has them"
    assert not stale, f"{DOMAIN_READMES[domain].name} lists options {stale} that --help does not have"
    wrong = {o: (table[o], expected[o]) for o in expected if table[o] != expected[o]}
    assert not wrong, f"README default ≠ --help default (README, --help): {wrong}"


def test_a_mistyped_option_is_answered_by_its_command_with_a_suggestion(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["molecules", "explain", "CCO", "--out", str(tmp_path / "o"), "--metods", "occlusion"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "usage: igkit molecules explain" in err
    assert "igkit molecules explain: error: unrecognized arguments: --metods occlusion" in err
    assert "--metods: did you mean --methods?" in err
    assert not (tmp_path / "o").exists()


def test_no_help_text_states_its_default_twice():
    for domain in DOMAIN_READMES:
        text = explain_parser(domain).format_help()
        flat = " ".join(text.split())
        assert "(default: its own) (default: None)" not in flat
        options = text[text.index("\noptions:"):]
        for chunk in re.split(r"\n  -", options):
            assert len(re.findall(r"\(default", chunk)) <= 1, chunk
        assert "(default: None)" not in text                # an unset option says "none", once


def test_require_converged_is_an_option_of_every_explain_command():
    for domain in DOMAIN_READMES:
        assert "--require-converged" in explain_parser(domain).format_help()
