"""Settings declared once per domain (igkit.settings): the README's option tables, ``--help``, the
Python API's keywords, ``run.json`` and the web app's choices all come from one declaration, so
they cannot disagree; a value out of its choices or limits is refused the same way everywhere."""
from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import igkit
from igkit.api import default_settings
from igkit.cli.main import build_parser, main
from igkit.errors import IGInputError
from igkit.settings import controls, declared, from_keywords, markdown_rows, setting, with_declared_rows

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ("molecules", "text", "vision")
#: a molecule run small enough for a test: the shipped model, 16 fixed steps
FAST = ["--steps", "16", "--quiet", "--threads", "1"]


def explain_parser(domain: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    group = sub.choices[domain]
    commands = next(a for a in group._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["explain"]


def declaration(domain: str) -> type:
    return igkit.get_domain(domain).settings_class


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_readme_table_has_the_declared_rows_word_for_word(domain):
    path = ROOT / "plugins" / domain / "README.md"
    readme = path.read_text(encoding="utf-8")
    table = readme[readme.index(f"| `igkit {domain} explain` option |"):].split("\n\n")[0].splitlines()
    missing = [row for row in markdown_rows(declaration(domain)) if row not in table]
    assert not missing, (f"{path.name} of {domain} differs from the declaration ({len(missing)} rows), e.g.\n"
                         f"{missing[0]}\nrewrite the rows with igkit.settings.with_declared_rows")
    assert with_declared_rows(readme, declaration(domain), f"igkit {domain} explain") == readme


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_declared_setting_is_in_help_with_its_default_once(domain):
    help_text = explain_parser(domain).format_help()
    dense = "".join(help_text.split())   # argparse wraps lines at spaces and hyphens
    for s in declared(declaration(domain)):
        for flag in s.flags:
            assert re.search(rf"{re.escape(flag)}\b", help_text), f"{flag} missing from --help"
        expected = f"{s.help} (default: {s.shown_default()})"
        assert dense.count("".join(expected.split())) == 1, f"--help of {domain} lacks, or repeats, {expected!r}"


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_settings_of_the_command_line_and_of_the_api_are_the_same(domain):
    parsed = explain_parser(domain).parse_args(["--out", "unused"])
    by_cli = igkit.get_domain(domain).settings(parsed)
    by_api = default_settings(igkit.get_domain(domain))
    assert by_cli == by_api
    # every declared setting is in the settings, except sources and switches left at their default
    expected = {s.name for s in declared(declaration(domain)) if not s.source and not s.only_if_set}
    assert set(by_cli) == expected


def test_chosen_values_give_the_same_settings_by_command_line_and_api():
    domain = igkit.get_domain("molecules")
    args = explain_parser("molecules").parse_args(
        ["--out", "o", "--baseline", "carbon", "--score", "probability", "--target", "2", "--max-atoms", "40",
         "--shared-scale", "--input", "mols.csv"])
    by_cli = domain.settings(args)
    by_api = default_settings(domain, baseline="carbon", score="probability", task="2", max_atoms=40,
                              shared_scale=True)
    assert by_cli == by_api
    assert by_cli["task"] == "2" and by_cli["shared_scale"] is True
    assert "input" not in by_cli        # a source, not a setting: the same rows from another file resume


@pytest.mark.parametrize("domain, keywords, message", [
    ("molecules", {"max_atom": 10}, "the molecules domain has no setting 'max_atom'; its settings are baseline, "),
    ("molecules", {"max_atoms": 0}, "max_atoms=0 is out of range; max_atoms takes a whole number ≥ 1"),
    ("molecules", {"baseline": "carbon+zero"}, "baseline='carbon+zero' is not offered; baseline is one of zero, "
                                               "carbon, zero+carbon"),
    ("molecules", {"input": "mols.csv"}, "'input' says what the molecules domain reads, not how"),
    ("vision", {"clip": [0.0, 120.0]}, "clip=120.0 is out of range; clip takes a list of 2 × a number from 0 to 100"),
    ("vision", {"frames": 1}, "frames=1 is out of range; frames takes a whole number ≥ 2"),
    ("text", {"window": "20"}, "window='20' has type str; window takes a whole number ≥ 1"),
    ("text", {"generate": 0}, "generate=0 is out of range; generate takes a whole number ≥ 1 or None"),
])
def test_the_api_refuses_an_unknown_or_out_of_range_setting_saying_what_is_allowed(domain, keywords, message):
    with pytest.raises(IGInputError) as refused:
        igkit.explain(domain, [], **keywords)
    assert message in str(refused.value)


def test_the_command_line_refuses_a_value_out_of_its_limits_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["text", "explain", "the cat", "--window", "0", "--out", str(tmp_path / "o")])
    assert stop.value.code == 2
    assert "--window: expected a whole number ≥ 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_app_offers_the_declared_controls():
    from igkit.app.choices import path_choices

    for domain in DOMAINS:
        offered = [(c.setting, c.options, c.default) for c in path_choices(igkit.get_domain(domain))]
        assert offered == [(s.name, s.choices, s.default) for s in controls(declaration(domain))]


@pytest.mark.filterwarnings("ignore:completeness error above")
def test_cli_api_and_app_runs_of_the_same_choices_have_one_run_id(tmp_path, capsys):
    """run_id hashes the settings, the integration and the model: equal ids, equal settings."""
    from igkit.app.service import DomainService

    choices = {"baseline": "zero", "score": "probability"}
    assert main(["molecules", "explain", "c1ccccc1O", "--out", str(tmp_path / "cli"), "--baseline", "zero",
                 "--score", "probability", *FAST]) == 0
    cli = json.loads((tmp_path / "cli" / "run.json").read_text())
    igkit.explain_to_folder("molecules", ["c1ccccc1O"], tmp_path / "api", integration={"steps": 16}, **choices)
    api = json.loads((tmp_path / "api" / "run.json").read_text())
    assert api["settings"] == cli["settings"] == {**default_settings(igkit.get_domain("molecules")), **choices}
    assert api["run_id"] == cli["run_id"]
    app = DomainService(igkit.get_domain("molecules"), workdir=tmp_path / "app").run("c1ccccc1O", steps=16,
                                                                                     choices=choices)
    assert app.ok, app.error
    assert app.summary["run_id"] == cli["run_id"]


def test_a_declaration_checks_types_choices_limits_and_lists():
    @dataclass(frozen=True)
    class Toy:
        size: int = setting(3, minimum=1, maximum=9, help="how big")
        kind: str = setting("a", choices=("a", "b"), help="which kind")
        names: list[str] | None = setting(None, type=list, item=str, parse=lambda t: t.split(","), help="names")
        loud: bool = setting(False, only_if_set=True, help="shout")

    assert from_keywords(Toy, "toy") == {"size": 3, "kind": "a", "names": None}
    assert from_keywords(Toy, "toy", names="x,y", loud=True) == {"size": 3, "kind": "a", "names": ["x", "y"],
                                                                 "loud": True}
    for bad, message in (({"size": 10}, "size=10 is out of range; size takes a whole number from 1 to 9"),
                         ({"size": True}, "size=True has type bool"), ({"kind": "c"}, "kind is one of a, b"),
                         ({"names": [1]}, "names=1 has type int; names takes a list of any number of × text"),
                         ({"colour": "red"}, "toy has no setting 'colour'; its settings are kind, loud, names, size")):
        with pytest.raises(IGInputError, match=re.escape(message)):
            from_keywords(Toy, "toy", **bad)
    parser = argparse.ArgumentParser()
    from igkit.settings import add_options, from_namespace

    add_options(parser, Toy, "toy")
    assert from_namespace(Toy, parser.parse_args(["--size", "4", "--names", "p,q"])) == {
        "size": 4, "kind": "a", "names": ["p", "q"]}
    with pytest.raises(SystemExit):
        parser.parse_args(["--size", "12"])
