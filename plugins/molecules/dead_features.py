"""Finding atoms the network cannot tell apart: identical attributions, different neighbourhoods.

This is how the paper caught the W1N2 flaw: carbons bonded to different atoms got
exactly the same attribution, because one weave module only sees an atom's type
and the sum of its pair features. Symmetric atoms (same neighbourhood) are
expected to tie and are not reported.
"""
from __future__ import annotations

import numpy as np
from rdkit import Chem

#: attributions closer than this fraction of the largest |attribution| count as identical
RELATIVE_TOLERANCE = 1e-5


def neighbourhood(atom: Chem.Atom) -> str:
    """An atom's element and its bonded neighbours, e.g. ``C(aromatic:C,aromatic:C,single:O)``."""
    bonds = sorted(f"{str(b.GetBondType()).lower()}:{b.GetOtherAtom(atom).GetSymbol()}" for b in atom.GetBonds())
    return f"{atom.GetSymbol()}({','.join(bonds)})"


def dead_feature_groups(mol: Chem.Mol, attributions: np.ndarray,
                        relative_tolerance: float = RELATIVE_TOLERANCE) -> list[dict]:
    """Groups of ≥ 2 atoms with the same attribution whose neighbourhoods are not all the same."""
    values = np.asarray(attributions, dtype=np.float64)
    if values.size < 2:
        return []
    scale = float(np.abs(values).max())
    tolerance = relative_tolerance * scale if scale > 0 else 0.0
    order = np.argsort(values, kind="stable")
    groups, current = [], [int(order[0])]
    for prev, nxt in zip(order[:-1], order[1:]):
        if values[nxt] - values[prev] <= tolerance:
            current.append(int(nxt))
        else:
            groups.append(current)
            current = [int(nxt)]
    groups.append(current)
    report = []
    for group in groups:
        if len(group) < 2:
            continue
        kinds: dict[str, list[int]] = {}
        for i in sorted(group):
            kinds.setdefault(neighbourhood(mol.GetAtomWithIdx(i)), []).append(i)
        if len(kinds) > 1:
            report.append({"atoms": sorted(group), "attribution": float(values[group].mean()),
                           "neighbourhoods": kinds})
    return report
