"""Tasks whose answer is known: SMARTS rules with AND/OR/NOT, and Crippen logP.

A rule is SMARTS patterns (or the names in :data:`NAMED_PATTERNS`) joined by
``AND``, ``OR``, ``NOT`` and parentheses, all separated by spaces, e.g.
``"benzene"``, ``"F AND carbonyl"``, ``"( amide OR ester ) AND NOT Cl"``. The
label is the rule's truth value; the *true atoms* of a positive molecule are the
atoms of the matches that make it true (Sanchez-Lengeling et al. 2020): for AND
the union of both sides, for OR of the sides that hold, and none for a NOT.

Crippen logP is a regression task with per-atom answers: RDKit's Wildman–Crippen
contributions, with each hydrogen's share added to its heavy atom so that the
atom contributions sum exactly to the label.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from rdkit import Chem, RDConfig, rdBase
from rdkit.Chem import rdMolDescriptors

from igkit.errors import IGInputError

from .readers import MoleculeRecord

NAMED_PATTERNS = {
    "benzene": "c1ccccc1",
    "carbonyl": "[CX3]=[OX1]",
    "fluorine": "[F]",
    "amide": "C(=O)[NX3]",
    "ester": "[CX3](=O)[OX2][#6]",
    "alcohol": "[CX4][OX2H]",
    "amine": "[NX3;H2,H1;!$(NC=O)]",
    "nitro": "[N+](=O)[O-]",
}
CRIPPEN = "crippen"
#: molecules RDKit ships, used to build tasks on any machine without downloads
RDKIT_MOLECULES = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"


@dataclass(frozen=True)
class Pattern:
    smarts: str
    query: Chem.Mol

    def holds(self, mol: Chem.Mol) -> bool:
        return mol.HasSubstructMatch(self.query)

    def atoms(self, mol: Chem.Mol) -> set[int]:
        return {i for match in mol.GetSubstructMatches(self.query) for i in match}


@dataclass(frozen=True)
class Not:
    inner: "Rule"

    def holds(self, mol: Chem.Mol) -> bool:
        return not self.inner.holds(mol)

    def atoms(self, mol: Chem.Mol) -> set[int]:
        return set()  # an absence has no atoms to point at


@dataclass(frozen=True)
class And:
    parts: tuple["Rule", ...]

    def holds(self, mol: Chem.Mol) -> bool:
        return all(p.holds(mol) for p in self.parts)

    def atoms(self, mol: Chem.Mol) -> set[int]:
        return set().union(*(p.atoms(mol) for p in self.parts)) if self.holds(mol) else set()


@dataclass(frozen=True)
class Or:
    parts: tuple["Rule", ...]

    def holds(self, mol: Chem.Mol) -> bool:
        return any(p.holds(mol) for p in self.parts)

    def atoms(self, mol: Chem.Mol) -> set[int]:
        return set().union(*(p.atoms(mol) for p in self.parts if p.holds(mol)))


Rule = Pattern | Not | And | Or


def parse_rule(text: str) -> Rule:
    """Parse ``"A AND ( B OR NOT C )"``; tokens are separated by spaces."""
    tokens = text.split()
    if not tokens:
        raise IGInputError("the rule is empty; give a SMARTS pattern or a name like 'benzene'")
    rule, pos = _parse_or(tokens, 0, text)
    if pos != len(tokens):
        raise IGInputError(f"unexpected {tokens[pos]!r} in rule {text!r}")
    return rule


def _parse_or(tokens: list[str], pos: int, text: str) -> tuple[Rule, int]:
    return _parse_chain(tokens, pos, text, "OR", _parse_and, Or)


def _parse_and(tokens: list[str], pos: int, text: str) -> tuple[Rule, int]:
    return _parse_chain(tokens, pos, text, "AND", _parse_factor, And)


def _parse_chain(tokens: list[str], pos: int, text: str, keyword: str, parse_part, combine
                 ) -> tuple[Rule, int]:
    """``part (keyword part)*`` as one rule; AND binds tighter than OR because OR's parts are ANDs."""
    part, pos = parse_part(tokens, pos, text)
    parts = [part]
    while pos < len(tokens) and tokens[pos].upper() == keyword:
        part, pos = parse_part(tokens, pos + 1, text)
        parts.append(part)
    return (parts[0] if len(parts) == 1 else combine(tuple(parts))), pos


def _parse_factor(tokens: list[str], pos: int, text: str) -> tuple[Rule, int]:
    if pos >= len(tokens):
        raise IGInputError(f"rule {text!r} ends where a pattern was expected")
    token = tokens[pos]
    if token.upper() == "NOT":
        inner, pos = _parse_factor(tokens, pos + 1, text)
        return Not(inner), pos
    if token == "(":
        inner, pos = _parse_or(tokens, pos + 1, text)
        if pos >= len(tokens) or tokens[pos] != ")":
            raise IGInputError(f"missing ')' in rule {text!r} (parentheses need spaces around them)")
        return inner, pos + 1
    if token.upper() in ("AND", "OR", ")"):
        raise IGInputError(f"unexpected {token!r} in rule {text!r}")
    smarts = NAMED_PATTERNS.get(token, token)
    with rdBase.CaptureErrorLog():
        query = Chem.MolFromSmarts(smarts)
    if query is None:
        raise IGInputError(f"{token!r} in rule {text!r} is neither a valid SMARTS pattern nor one of "
                           f"{', '.join(NAMED_PATTERNS)}")
    return Pattern(smarts, query), pos + 1


def crippen_contributions(mol: Chem.Mol) -> np.ndarray:
    """Per heavy atom: its Wildman–Crippen logP contribution plus those of its hydrogens."""
    with_h = Chem.AddHs(mol)
    contribs = np.array([c[0] for c in rdMolDescriptors._CalcCrippenContribs(with_h)])
    out = contribs[:mol.GetNumAtoms()].copy()
    for atom in with_h.GetAtoms():
        if atom.GetIdx() >= mol.GetNumAtoms():
            out[atom.GetNeighbors()[0].GetIdx()] += contribs[atom.GetIdx()]
    return out


@dataclass(frozen=True)
class Task:
    """A rule (classification) or Crippen logP (regression), with labels and per-atom truth."""

    name: str
    rule: Rule | None

    @property
    def task_type(self) -> str:
        return "regression" if self.rule is None else "classification"

    def label(self, mol: Chem.Mol) -> float:
        if self.rule is None:
            return float(crippen_contributions(mol).sum())
        return float(self.rule.holds(mol))

    def truth(self, mol: Chem.Mol) -> np.ndarray:
        """Per atom: True for rule atoms (classification) or the Crippen contribution (regression)."""
        if self.rule is None:
            return crippen_contributions(mol)
        flags = np.zeros(mol.GetNumAtoms(), dtype=bool)
        flags[sorted(self.rule.atoms(mol))] = True
        return flags


def make_task(name: str) -> Task:
    """``"crippen"`` or a rule."""
    if name.strip().lower() == CRIPPEN:
        return Task(CRIPPEN, None)
    return Task(name.strip(), parse_rule(name))


def test_flags(n: int, test_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Which of ``n`` molecules form the test split (the same for make-task and evaluate)."""
    return np.random.default_rng(seed).random(n) < test_fraction


def write_task_csv(task: Task, records: Sequence[MoleculeRecord], out: Path, *, test_fraction: float = 0.2,
                   seed: int = 0) -> dict[str, int]:
    """``mol_id,smiles,label,split`` for each molecule; returns counts per split (and positives)."""
    test = test_flags(len(records), test_fraction, seed)
    counts = {"train": 0, "test": 0, "positive": 0}
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["mol_id", "smiles", "label", "split"])
        for rec, is_test in zip(records, test):
            label = task.label(rec.mol)
            split = "test" if is_test else "train"
            counts[split] += 1
            counts["positive"] += int(task.rule is not None and label > 0.5)
            writer.writerow([rec.id, rec.smiles, f"{label:.6g}", split])
    return counts
