"""What igkit's other attribution methods need from a weave network (``--methods``).

The runner calls :func:`method_options` for each method listed with ``--methods`` (see
``MoleculesDomain.method_options``). Expected Gradients and multiple-baseline IG draw
reference molecules from RDKit's bundled NCI set (:func:`reference_stack`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from igkit import Prepared
from igkit.errors import IGInputError

from .featurize import featurize


#: reference molecules for Expected Gradients / multiple-baseline IG: the all-zero one plus this many
#: drawn from the reference pool (see :func:`reference_stack`)
REFERENCE_DRAWS = 15
#: molecules of RDKit's bundled NCI set whose atom and pair feature rows form the reference pool
REFERENCE_POOL_MOLECULES = 300
_POOLS: dict[str, tuple[np.ndarray, np.ndarray]] = {}
_DRAWS: dict[tuple[str, str, int], np.ndarray] = {}
#: positions per block of reference draws: each block has its own seed, so the draw at a position never
#: depends on how far a batch is padded
_BLOCK = 64


def method_options(method: str, batch: Prepared) -> dict[str, Any]:
    """What ``method`` needs from the weave network and the molecules of ``batch`` (see the README).

    * ``occlusion``: ``groups`` = one unit per atom (all its features) and one per atom pair
      (all its features); padding is one extra unit per molecule (its drop is 0). Pairs are
      their own units because groups may not overlap (an atom "with its pairs" would share
      each pair with another atom); the atom-plus-pairs view splits each pair's drop in half,
      exactly as for IG (:func:`.explanation.with_pairs`).
    * ``grad_cam``: ``layer`` = the network's last atom layer (``atom_readout``, ``[B, N, C]``),
      a CAM over atoms (see :func:`.explanation.method_values` for the padding correction).
    * ``guided_backprop``: ``model`` = the network when its weave modules use ``nn.ReLU``
      modules; the weave modules of :mod:`.weave` call ``torch.relu``, which guided
      backpropagation cannot reach, so it is refused (``IGInputError``) rather than silently
      computed as a plain gradient there.
    * ``expected_gradients``, ``multi_baseline_ig``: ``reference`` = :func:`reference_stack`.
    * ``blur_ig``, ``xrai``: refused; they blur or segment images.
    """
    import torch

    net = batch.context.get("net")
    atoms, pairs = batch.inputs
    if method == "occlusion":
        pair_index, atom_mask, pair_mask = batch.forward_args
        B, N, M = atoms.shape[0], atoms.shape[1], pairs.shape[1]
        atom_ids = torch.where(atom_mask > 0, torch.arange(N).expand(B, N), torch.full((B, N), -1))
        pair_ids = torch.where(pair_mask > 0, N + torch.arange(M).expand(B, M), torch.full((B, M), -1))
        return {"groups": (atom_ids[..., None].expand(atoms.shape).contiguous(),
                           pair_ids[..., None].expand(pairs.shape).contiguous())}
    if method == "grad_cam":
        return {"layer": net.atom_readout}
    if method == "guided_backprop":
        if not any(isinstance(m, torch.nn.ReLU) for m in net.weave.modules()):
            raise IGInputError("guided_backprop is unavailable for molecules: the weave modules apply "
                               "torch.relu as a function, which guided backpropagation cannot guide (it "
                               "only hooks nn.ReLU modules), so the result would be a plain gradient "
                               "there; use saliency for the plain gradient")
        return {"model": net}
    if method in ("expected_gradients", "multi_baseline_ig"):
        return {"reference": reference_stack(batch.context["featurization"], atoms.shape[1], pairs.shape[1])}
    return {}


def reference_pool(featurization: Any) -> tuple[np.ndarray, np.ndarray]:
    """Atom feature rows and pair feature rows of the first :data:`REFERENCE_POOL_MOLECULES`
    molecules of RDKit's bundled NCI set, featurized as the model's molecules are (cached)."""
    key = featurization.fingerprint
    if key not in _POOLS:
        from rdkit import Chem, rdBase

        from .tasks import RDKIT_MOLECULES

        atoms, pairs = [], []
        with rdBase.BlockLogs():
            for line in RDKIT_MOLECULES.read_text().splitlines():
                mol = Chem.MolFromSmiles(line.split()[0]) if line.strip() else None
                if mol is None or mol.GetNumAtoms() == 0:
                    continue
                graph = featurize(mol, featurization)
                atoms.append(graph.atoms)
                pairs.append(graph.pairs)
                if len(atoms) == REFERENCE_POOL_MOLECULES:
                    break
        _POOLS[key] = (np.concatenate(atoms).astype(np.float32), np.concatenate(pairs).astype(np.float32))
    return _POOLS[key]


def _draws(key: str, kind: str, size: int, pool_size: int) -> np.ndarray:
    """``[size, REFERENCE_DRAWS]`` pool rows: position p's draws come from block p // 64's own seed."""
    blocks = -(-size // _BLOCK)
    rows = []
    for b in range(blocks):
        cache = (key, kind, b)
        if cache not in _DRAWS:
            rng = np.random.default_rng([0, 1 if kind == "pairs" else 0, b])
            _DRAWS[cache] = rng.integers(pool_size, size=(_BLOCK, REFERENCE_DRAWS))
        rows.append(_DRAWS[cache])
    return np.concatenate(rows)[:size]


def reference_stack(featurization: Any, n_atoms: int, n_pairs: int):
    """Reference molecules for Expected Gradients: ``([K, N, Fa], [K, M, Fp])`` with K = 1 + 15.

    The graph (which atoms and pairs exist, and how they connect) is the explained
    molecule's own: a reference changes features, not structure. Reference 0 is all
    zero (IG's baseline); each of the others gives every atom position an atom feature
    row and every pair position a pair feature row drawn from :func:`reference_pool`
    (the data set's atom and pair feature distributions, drawn independently per
    position, seeded per position so a molecule's references do not depend on its
    padding). Padding positions are masked by the network, so their draws change nothing.
    """
    import torch

    atom_pool, pair_pool = reference_pool(featurization)
    key = featurization.fingerprint
    a = atom_pool[_draws(key, "atoms", n_atoms, len(atom_pool)).T]        # [K-1, N, Fa]
    p = pair_pool[_draws(key, "pairs", n_pairs, len(pair_pool)).T]        # [K-1, M, Fp]
    atoms = np.concatenate([np.zeros((1, n_atoms, atom_pool.shape[1]), np.float32), a])
    pairs = np.concatenate([np.zeros((1, n_pairs, pair_pool.shape[1]), np.float32), p])
    return torch.from_numpy(atoms), torch.from_numpy(pairs)
