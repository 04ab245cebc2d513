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

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from rdkit import Chem, RDConfig, rdBase
from rdkit.Chem import rdMolDescriptors

from igkit.errors import IGInputError
from igkit.io.records import write_csv

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
    # fragments of the multi-fragment benchmark tasks (McCloskey et al. 2019; Sanchez-Lengeling et al. 2020)
    "fluoride": "[F]",
    "chloride": "[Cl]",
    "unbranched_alkane": "[CH2;R0;D2][CH2;R0;D2][CH2;R0;D2]",
    "primary_amine": "[NX3;H2;!$(N[#6]=[O,S,N])]",
    "ether": "[OD2;!$(O[#6]=O)]([#6])[#6]",
    "hydroxyl": "[OX2H][CX4]",
}
#: known-answer tasks of one or more fragments joined by AND, each built by
#: ``igkit molecules make-task --task NAME --out NAME.csv`` (balanced, fixed split)
NAMED_TASKS = {
    "benzene": "benzene",
    "fluoride_carbonyl": "fluoride AND carbonyl",
    "alkane_carbonyl": "unbranched_alkane AND carbonyl",
    "chloride_carbonyl": "chloride AND carbonyl",
    "amine_ether_benzene": "primary_amine AND ether AND benzene",
    "fluoride_carbonyl_ether": "fluoride AND carbonyl AND ether",
}
#: where the shared ZINC pool lives relative to the repository (12,000 drug-like molecules)
ZINC_POOL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "benzene" / "benzene.csv"
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
    """``"crippen"``, a task of :data:`NAMED_TASKS` (by name) or a rule."""
    if name.strip().lower() == CRIPPEN:
        return Task(CRIPPEN, None)
    if name.strip() in NAMED_TASKS:
        return Task(name.strip(), parse_rule(NAMED_TASKS[name.strip()]))
    return Task(name.strip(), parse_rule(name))


def default_pool() -> list[Path]:
    """What balanced tasks are drawn from: the shared ZINC set (when present) plus RDKit's NCI set."""
    return [ZINC_POOL, RDKIT_MOLECULES] if ZINC_POOL.is_file() else [RDKIT_MOLECULES]


def fragments(rule: Rule) -> tuple[Rule, ...]:
    """The parts of a top-level AND (one part for any other rule)."""
    return rule.parts if isinstance(rule, And) else (rule,)


def balanced_selection(task: Task, records: Sequence[MoleculeRecord], *, max_positives: int = 1500,
                       partial_fraction: float = 0.5, seed: int = 0) -> tuple[list[int], dict[str, int]]:
    """Indices of a balanced task: up to ``max_positives`` positives and as many negatives.

    As in the benchmark's AND tasks, a share ``partial_fraction`` of the negatives
    (as many as the pool has) contains some but not all fragments of the rule, so a
    model cannot score by one fragment alone; the other negatives are drawn from the
    rest. The draw is fixed by ``seed``; the returned indices keep the pool's order.
    """
    if task.rule is None:
        raise IGInputError("balanced tasks need a rule; crippen is a regression task")
    parts = fragments(task.rule)
    positives, partial, other = [], [], []
    for k, rec in enumerate(records):
        hits = [p.holds(rec.mol) for p in parts]
        if all(hits):
            positives.append(k)
        elif any(hits) and len(parts) > 1:
            partial.append(k)
        else:
            other.append(k)
    rng = np.random.default_rng(seed)
    n_pos = min(max_positives, len(positives), len(partial) + len(other))
    if n_pos == 0:
        raise IGInputError(f"the pool has no positives (or no negatives) for {task.name!r}")
    pos = rng.choice(positives, n_pos, replace=False).tolist()
    n_partial = min(len(partial), int(round(partial_fraction * n_pos)))
    n_other = min(len(other), n_pos - n_partial)
    n_partial = n_pos - n_other                       # top up from the partial ones if others run out
    neg = rng.choice(partial, n_partial, replace=False).tolist() + rng.choice(other, n_other, replace=False).tolist()
    counts = {"positive": n_pos, "negative_partial": n_partial, "negative_other": n_other,
              "pool_positive": len(positives), "pool_partial": len(partial)}
    return sorted(pos + neg), counts


def test_flags(n: int, test_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Which of ``n`` molecules form the test split (the same for make-task and evaluate)."""
    return np.random.default_rng(seed).random(n) < test_fraction


def write_task_csv(task: Task, records: Sequence[MoleculeRecord], out: Path, *, test_fraction: float = 0.2,
                   seed: int = 0, counterfactuals: bool = False) -> dict[str, int]:
    """``mol_id,smiles,label,split`` for each molecule; returns counts per split (and positives).

    With ``counterfactuals`` every *training* positive of an AND rule also yields one
    negative per fragment, the molecule with that fragment deleted
    (:func:`counterfactual_negatives`), appended after the task's own rows; the test
    split is the same as without them.
    """
    test = test_flags(len(records), test_fraction, seed)
    counts = {"train": 0, "test": 0, "positive": 0, "counterfactual": 0}
    rows = []
    for rec, is_test in zip(records, test):
        label = task.label(rec.mol)
        split = "test" if is_test else "train"
        counts[split] += 1
        counts["positive"] += int(task.rule is not None and label > 0.5)
        rows.append([rec.id, rec.smiles, f"{label:.6g}", split])
    if counterfactuals and task.rule is not None:
        train = [rec for rec, is_test in zip(records, test) if not is_test]
        for mol_id, smiles, _ in counterfactual_negatives(task, train):
            rows.append([mol_id, smiles, "0", "train"])
            counts["train"] += 1
            counts["counterfactual"] += 1
    write_csv(out, ["mol_id", "smiles", "label", "split"], rows)
    return counts


def clean_training_negatives(task: Task, records: Sequence[MoleculeRecord], pool: Sequence[MoleculeRecord], *,
                             test_fraction: float = 0.2, seed: int = 0) -> tuple[list[MoleculeRecord], int]:
    """``records`` (a balanced task, in order) with every *training* negative that holds part
    of the rule swapped for a pool molecule holding none of it; the test split (same
    ``test_fraction`` and ``seed``) keeps its partial negatives. Returns the records and
    how many were swapped."""
    parts = fragments(task.rule)
    test = test_flags(len(records), test_fraction, seed)
    taken = {r.smiles for r in records}
    spare = [r for r in pool if r.smiles not in taken and not any(p.holds(r.mol) for p in parts)]
    order = np.random.default_rng(seed + 1).permutation(len(spare)).tolist()
    out, swapped = [], 0
    for rec, is_test in zip(records, test):
        if not is_test and not task.rule.holds(rec.mol) and any(p.holds(rec.mol) for p in parts) and order:
            rec = spare[order.pop()]
            swapped += 1
        out.append(rec)
    return out, swapped


def break_fragment(mol: Chem.Mol, part: Rule) -> Chem.Mol | None:
    """``mol`` with ``part`` deleted wherever it matches (hydrogens fill the open valences).

    The smallest edit: the matches' heteroatoms when they have any (the F of a
    fluoride, the O of a carbonyl or ether, the N of an amine), else all their atoms (a
    carbon chain, a benzene ring). A counterfactual that holds the rest of the
    molecule fixed; None when RDKit cannot sanitise the result (e.g. a broken aromatic
    ring) or when the deletion leaves or creates a match of ``part``.
    """
    matched = part.atoms(mol)
    hetero = {i for i in matched if mol.GetAtomWithIdx(i).GetAtomicNum() != 6}
    atoms = sorted(hetero or matched, reverse=True)
    if not atoms or len(atoms) >= mol.GetNumAtoms():
        return None
    editable = Chem.RWMol(mol)
    neighbours = {n.GetIdx() for i in atoms for n in mol.GetAtomWithIdx(i).GetNeighbors()} - set(atoms)
    for i in neighbours:     # aromatic N–H and charged atoms keep a valid valence after losing a bond
        atom = editable.GetAtomWithIdx(i)
        atom.SetNoImplicit(False)
        atom.SetNumExplicitHs(0)
    for i in atoms:
        editable.RemoveAtom(i)
    out = editable.GetMol()
    with rdBase.BlockLogs():
        try:
            Chem.SanitizeMol(out)
        except Exception:       # RDKit raises several kinds for a molecule it cannot sanitise
            return None
        out = Chem.MolFromSmiles(Chem.MolToSmiles(out))
    if out is None or out.GetNumAtoms() == 0 or part.holds(out):
        return None
    return out


def counterfactual_negatives(task: Task, records: Sequence[MoleculeRecord]) -> list[tuple[str, str, int]]:
    """For each positive of an AND rule and each fragment, the molecule with that fragment
    deleted while the others remain: ``(id, smiles, broken part number)``; they are negatives
    holding part of the rule, differing from a positive by one fragment only."""
    parts = fragments(task.rule)
    out = []
    if len(parts) < 2:
        return out
    for rec in records:
        if not task.rule.holds(rec.mol):
            continue
        for k, part in enumerate(parts):
            edited = break_fragment(rec.mol, part)
            if edited is None or task.rule.holds(edited) or not any(p.holds(edited) for p in parts):
                continue
            out.append((f"{rec.id}_without{k + 1}", Chem.MolToSmiles(edited), k + 1))
    return out
