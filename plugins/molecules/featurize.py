"""Molecules as atom and atom-pair feature tables (Kearnes et al. 2016).

Two schemes. ``simple`` is the one the counterfactuals paper attributes: a one-hot
of atom type per atom, and per pair either a one-hot of bond type (bonded) or of
graph distance (not bonded). ``full`` adds charge, ring sizes, hybridisation,
aromaticity, H-bond donor/acceptor and chirality per atom, and graph distance and
same-ring membership per pair. Pairs further apart than ``max_distance`` bonds are
dropped, which bounds the pair count of very large molecules to O(atoms).

Pairs are unordered (i < j): the weave network treats (i, j) and (j, i) alike, so
one row per pair carries the same information at half the cost.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from rdkit import Chem, RDConfig
from rdkit.Chem import AllChem, ChemicalFeatures

from igkit.errors import IGInputError

#: atom types of the one-hot; everything else lands in the final "other" slot
ATOM_TYPES = ("C", "N", "O", "S", "F", "Cl", "Br", "I", "P", "B")
#: bond kinds of the one-hot; rarer kinds (dative, quadruple) count as single
BOND_TYPES = {
    Chem.BondType.SINGLE: "single",
    Chem.BondType.DOUBLE: "double",
    Chem.BondType.TRIPLE: "triple",
    Chem.BondType.AROMATIC: "aromatic",
}
RING_SIZES = (3, 4, 5, 6, 7, 8)
HYBRIDISATIONS = (Chem.HybridizationType.SP, Chem.HybridizationType.SP2, Chem.HybridizationType.SP3)
SCHEMES = ("simple", "full")
#: bump when the meaning or order of any feature changes: old checkpoints then refuse to load
FEATURE_VERSION = 1


@dataclass(frozen=True)
class Featurization:
    """Which features a molecule becomes; its fingerprint is stored in every checkpoint."""

    scheme: str = "simple"
    max_distance: int = 4

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise IGInputError(f"unknown featurization {self.scheme!r}; choose one of {', '.join(SCHEMES)}")
        if isinstance(self.max_distance, bool) or not isinstance(self.max_distance, int) \
                or self.max_distance < 1:
            raise IGInputError(f"max_distance must be a whole number of bonds ≥ 1, got {self.max_distance!r}")

    @property
    def atom_feature_names(self) -> list[str]:
        names = [f"type={t}" for t in ATOM_TYPES] + ["type=other"]
        if self.scheme == "full":
            names += ["formal_charge", "partial_charge"]
            names += [f"in_ring_size={s}" for s in RING_SIZES]
            names += ["hybridisation=sp", "hybridisation=sp2", "hybridisation=sp3", "aromatic",
                      "hbond_donor", "hbond_acceptor", "chirality=R", "chirality=S"]
        return names

    @property
    def pair_feature_names(self) -> list[str]:
        names = [f"bond={b}" for b in BOND_TYPES.values()]
        first = 1 if self.scheme == "full" else 2  # simple: bonded pairs carry only the bond type
        names += [f"distance={d}" for d in range(first, self.max_distance + 1)]
        if self.scheme == "full":
            names.append("same_ring")
        return names

    def config(self) -> dict:
        return {**asdict(self), "version": FEATURE_VERSION, "fingerprint": self.fingerprint}

    @property
    def fingerprint(self) -> str:
        """A short hash of the scheme, its settings and every feature name in order."""
        spec = {"scheme": self.scheme, "max_distance": self.max_distance, "version": FEATURE_VERSION,
                "atoms": self.atom_feature_names, "pairs": self.pair_feature_names}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_config(cls, config: dict) -> "Featurization":
        """Rebuild from a checkpoint; refuse if this igkit would compute different features."""
        feat = cls(scheme=config["scheme"], max_distance=int(config["max_distance"]))
        if config.get("fingerprint") != feat.fingerprint:
            raise IGInputError(
                f"the checkpoint's featurization {config['scheme']!r} (fingerprint "
                f"{config.get('fingerprint')}, version {config.get('version')}) differs from what this "
                f"igkit computes for it (fingerprint {feat.fingerprint}, version {FEATURE_VERSION}); "
                f"retrain the model with this igkit")
        return feat

    def describe(self) -> str:
        return f"{self.scheme} (max distance {self.max_distance}, fingerprint {self.fingerprint})"


@dataclass
class MolGraph:
    """One molecule's features: atoms ``[n, Fa]`` and unordered pairs ``[m, Fp]`` at ``pair_index``."""

    mol: Chem.Mol
    atoms: np.ndarray
    pair_index: np.ndarray       # [m, 2], i < j
    pairs: np.ndarray
    relations: list[str]         # per pair: bond type, or "distance d"
    fingerprint: str

    @property
    def n_atoms(self) -> int:
        return int(self.atoms.shape[0])

    @property
    def n_pairs(self) -> int:
        return int(self.pair_index.shape[0])

    @property
    def bonded(self) -> np.ndarray:
        """Per pair: whether the two atoms share a bond."""
        return np.array([r in BOND_TYPES.values() for r in self.relations], dtype=bool)


def featurize(mol: Chem.Mol, featurization: Featurization = Featurization()) -> MolGraph:
    """Atom and pair features of one RDKit molecule (hydrogens implicit)."""
    if mol.GetNumAtoms() == 0:
        raise IGInputError("the molecule has no atoms (empty SMILES?)")
    atoms = _simple_atoms(mol)
    if featurization.scheme == "full":
        atoms = np.concatenate([atoms, _full_atom_extras(mol)], axis=1)
    index, pairs, relations = _pairs(mol, featurization)
    return MolGraph(mol=mol, atoms=atoms, pair_index=index, pairs=pairs, relations=relations,
                    fingerprint=featurization.fingerprint)


def atom_type_index(symbol: str) -> int:
    """Slot of an element in the atom-type one-hot ("other" for anything not listed)."""
    return ATOM_TYPES.index(symbol) if symbol in ATOM_TYPES else len(ATOM_TYPES)


def _simple_atoms(mol: Chem.Mol) -> np.ndarray:
    out = np.zeros((mol.GetNumAtoms(), len(ATOM_TYPES) + 1), dtype=np.float32)
    for atom in mol.GetAtoms():
        out[atom.GetIdx(), atom_type_index(atom.GetSymbol())] = 1.0
    return out


def _full_atom_extras(mol: Chem.Mol) -> np.ndarray:
    n = mol.GetNumAtoms()
    charged = Chem.Mol(mol)
    AllChem.ComputeGasteigerCharges(charged)
    ring_info = mol.GetRingInfo()
    donors, acceptors = _hbond_atoms(mol)
    chiral = dict(Chem.FindMolChiralCenters(mol, includeUnassigned=False, useLegacyImplementation=False))
    rows = []
    for atom in mol.GetAtoms():
        i = atom.GetIdx()
        partial = charged.GetAtomWithIdx(i).GetDoubleProp("_GasteigerCharge")
        row = [float(atom.GetFormalCharge()), partial if np.isfinite(partial) else 0.0]
        row += [float(sum(1 for ring in ring_info.AtomRings() if i in ring and len(ring) == s))
                for s in RING_SIZES]
        row += [float(atom.GetHybridization() == h) for h in HYBRIDISATIONS]
        row += [float(atom.GetIsAromatic()), float(i in donors), float(i in acceptors)]
        row += [float(chiral.get(i) == "R"), float(chiral.get(i) == "S")]
        rows.append(row)
    return np.asarray(rows, dtype=np.float32).reshape(n, -1)


@lru_cache(maxsize=1)
def _feature_factory():
    return ChemicalFeatures.BuildFeatureFactory(str(Path(RDConfig.RDDataDir) / "BaseFeatures.fdef"))


def _hbond_atoms(mol: Chem.Mol) -> tuple[set[int], set[int]]:
    donors, acceptors = set(), set()
    for feature in _feature_factory().GetFeaturesForMol(mol):
        if feature.GetFamily() == "Donor":
            donors.update(feature.GetAtomIds())
        elif feature.GetFamily() == "Acceptor":
            acceptors.update(feature.GetAtomIds())
    return donors, acceptors


def _pairs(mol: Chem.Mol, featurization: Featurization) -> tuple[np.ndarray, np.ndarray, list[str]]:
    names = featurization.pair_feature_names
    column = {name: k for k, name in enumerate(names)}
    i_idx, j_idx, dist = pairs_within(mol, featurization.max_distance)
    features = np.zeros((len(i_idx), len(names)), dtype=np.float32)
    rings = [set(r) for r in mol.GetRingInfo().AtomRings()] if featurization.scheme == "full" else []
    relations = []
    for row, (i, j, d) in enumerate(zip(i_idx.tolist(), j_idx.tolist(), dist.tolist())):
        bond = mol.GetBondBetweenAtoms(i, j) if d == 1 else None
        bond_name = BOND_TYPES.get(bond.GetBondType(), "single") if bond is not None else None
        if bond_name is not None:
            features[row, column[f"bond={bond_name}"]] = 1.0
        if featurization.scheme == "full" or bond_name is None:
            features[row, column[f"distance={d}"]] = 1.0
        if rings and any(i in r and j in r for r in rings):
            features[row, column["same_ring"]] = 1.0
        relations.append(bond_name or f"distance {d}")
    index = np.stack([i_idx, j_idx], axis=1).astype(np.int64).reshape(-1, 2)
    return index, features, relations


def pairs_within(mol: Chem.Mol, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Atom pairs ``i < j`` at most ``max_distance`` bonds apart, ordered by ``(i, j)``, with their
    graph distance. A breadth-first search from each atom that stops at ``max_distance``: memory
    and time grow with the pairs kept, never with atoms² (no distance matrix)."""
    n = mol.GetNumAtoms()
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for bond in mol.GetBonds():
        a, b = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        neighbours[a].append(b)
        neighbours[b].append(a)
    i_out: list[int] = []
    j_out: list[int] = []
    d_out: list[int] = []
    for i in range(n):
        seen = {i: 0}
        frontier = [i]
        for d in range(1, max_distance + 1):
            nxt = []
            for a in frontier:
                for b in neighbours[a]:
                    if b not in seen:
                        seen[b] = d
                        nxt.append(b)
            if not nxt:
                break
            frontier = nxt
        for j in sorted(k for k in seen if k > i):
            i_out.append(i)
            j_out.append(j)
            d_out.append(seen[j])
    return (np.asarray(i_out, dtype=np.int64), np.asarray(j_out, dtype=np.int64),
            np.asarray(d_out, dtype=np.int64))
