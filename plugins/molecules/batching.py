"""Packing molecules of different sizes into padded tensors, grouped by size.

Layout: atoms ``[B, N, Fa]``, pairs ``[B, M, Fp]`` (unordered pairs within the
distance cut-off), the atoms of each pair ``pair_index [B, M, 2]``, and masks
``atom_mask [B, N]``, ``pair_mask [B, M]``. Padded entries are zero and masked,
so they change no prediction and receive no attribution. The structure tensors
go to igkit as ``forward_args``: their first dimension is B, so they follow each
molecule along the integration path while only atoms and pairs are scaled.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .featurize import MolGraph


@dataclass
class MoleculeBatch:
    """Padded features of several molecules plus the structure the network needs."""

    atoms: torch.Tensor
    pairs: torch.Tensor
    pair_index: torch.Tensor
    atom_mask: torch.Tensor
    pair_mask: torch.Tensor
    fingerprint: str

    @property
    def inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """What integrated gradients scales: atom and pair features."""
        return self.atoms, self.pairs

    @property
    def structure(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What stays fixed along the path: which atoms and pairs exist, and how they connect."""
        return self.pair_index, self.atom_mask, self.pair_mask

    def __len__(self) -> int:
        return int(self.atoms.shape[0])


def pack(graphs: Sequence[MolGraph], n_atoms: int | None = None, n_pairs: int | None = None
         ) -> MoleculeBatch:
    """Pad ``graphs`` to a common size (at least one atom and one pair slot)."""
    if not graphs:
        raise ValueError("pack needs at least one molecule")
    fingerprints = {g.fingerprint for g in graphs}
    if len(fingerprints) != 1:
        raise ValueError(f"molecules featurized differently cannot share a batch: {sorted(fingerprints)}")
    N = max(n_atoms or 1, max(g.n_atoms for g in graphs))
    M = max(n_pairs or 1, max(g.n_pairs for g in graphs))
    B, Fa, Fp = len(graphs), graphs[0].atoms.shape[1], graphs[0].pairs.shape[1]
    atoms = np.zeros((B, N, Fa), dtype=np.float32)
    pairs = np.zeros((B, M, Fp), dtype=np.float32)
    index = np.zeros((B, M, 2), dtype=np.int64)
    atom_mask = np.zeros((B, N), dtype=np.float32)
    pair_mask = np.zeros((B, M), dtype=np.float32)
    for b, g in enumerate(graphs):
        atoms[b, :g.n_atoms] = g.atoms
        pairs[b, :g.n_pairs] = g.pairs
        index[b, :g.n_pairs] = g.pair_index
        atom_mask[b, :g.n_atoms] = 1.0
        pair_mask[b, :g.n_pairs] = 1.0
    return MoleculeBatch(torch.from_numpy(atoms), torch.from_numpy(pairs), torch.from_numpy(index),
                         torch.from_numpy(atom_mask), torch.from_numpy(pair_mask), fingerprints.pop())


#: molecules whose atom counts fall in one bucket share integration calls; each bucket is at most
#: this factor larger than the one below, so padding stays under about a quarter
BUCKET_GROWTH = 1.25


def size_bucket(n_atoms: int) -> int:
    """The padded size of a molecule's bucket: 1-8 atoms share one, then steps of at most 25%."""
    if n_atoms <= 8:
        return 8
    return int(math.ceil(8 * BUCKET_GROWTH ** math.ceil(math.log(n_atoms / 8, BUCKET_GROWTH) - 1e-9)))


def size_batches(graphs: Sequence[MolGraph], batch_size: int, *, shuffle: bool = False,
                 seed: int = 0) -> list[list[int]]:
    """Indices grouped into batches of similar size, so padding stays small.

    With ``shuffle``, molecules are shuffled, sorted by size within windows of 50
    batches and the batches shuffled again: every epoch differs, padding stays low.
    """
    order = np.arange(len(graphs))
    sizes = np.array([g.n_atoms + g.n_pairs for g in graphs])
    rng = np.random.default_rng(seed)
    if shuffle:
        order = rng.permutation(order)
        window = batch_size * 50
        order = np.concatenate([chunk[np.argsort(sizes[chunk], kind="stable")]
                                for chunk in np.array_split(order, max(1, -(-len(order) // window)))])
    else:
        order = order[np.argsort(sizes, kind="stable")]
    batches = [order[k:k + batch_size].tolist() for k in range(0, len(order), batch_size)]
    if shuffle:
        batches = [batches[k] for k in rng.permutation(len(batches))]
    return batches
