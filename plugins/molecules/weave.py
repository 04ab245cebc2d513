"""The weave graph-convolution network of Kearnes et al. (2016), batched without Python loops.

A *weave module* updates atom and pair representations together:

* A→A: each atom through a layer;  P→A: a layer on each pair, summed into both
  of its atoms;  the two are concatenated and mixed into the new atom layer.
* A→P: a layer on (a_i, a_j) plus the same layer on (a_j, a_i), so the pair does
  not depend on atom order;  P→P: each pair through a layer;  mixed likewise.

Naming follows Kearnes et al. (2016): ``WxNy`` has x weave modules and atom pairs
up to graph distance y (``w2n∞``, spelled ``w2ninf`` too, keeps every pair of a
connected molecule). The number of fully connected layers after the molecule
readout is separate (``n_dense``, ``--dense-layers``); igkit used to read the N
as that number and always used pairs up to distance 4, so its "W2N2" is W2N4 with
two dense layers here (old checkpoints store all three numbers and load as such).
The counterfactuals paper's W1N2 "had only one convolution layer", so an atom's own
features reach the readout only through its own row, combined with the *sum* of
its pair features; atoms of one type with the same counts of each bond kind and
distance therefore receive identical attributions (the "dead features" the
explain command reports). Two or more modules mix neighbours' atom features into
the pairs and then back into the atoms, which removes this blind spot.

Readout: a layer on the final atom representations, a batch norm over real atoms,
then a Gaussian histogram (11 Gaussians spread like a standard normal, memberships
normalised per value) summed over the atoms of each molecule.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from igkit.errors import IGInputError

from .defaults import BASELINES

#: centres and widths of the histogram's Gaussians: equal mass bins of a standard normal
GAUSSIAN_MEANS = (-1.645, -1.080, -0.739, -0.468, -0.228, 0.0, 0.228, 0.468, 0.739, 1.080, 1.645)
GAUSSIAN_SIGMAS = (0.283, 0.170, 0.134, 0.118, 0.114, 0.114, 0.114, 0.118, 0.134, 0.170, 0.283)
TASK_TYPES = ("classification", "regression")
_ARCH = re.compile(r"^w(\d+)n(\d+|inf|∞)$")
#: "all pairs" (N∞) as a distance cut-off: longer than any shortest path in the task pools
#: (the ZINC pool's longest is 23 bonds, RDKit's NCI set's 45; longer pairs would be dropped)
ALL_PAIRS_DISTANCE = 64
#: the architecture igkit trains by default (see the README's study of multi-fragment tasks)
DEFAULT_ARCH = "w2n2"
DEFAULT_DENSE_LAYERS = 2


@dataclass
class WeaveConfig:
    """Everything needed to rebuild the network (stored as JSON beside the weights)."""

    atom_features: int
    pair_features: int
    n_weave: int = 2
    n_dense: int = 2
    atom_hidden: int = 50
    pair_hidden: int = 50
    readout_hidden: int = 128
    dense_hidden: int = 128
    tasks: list[str] = field(default_factory=lambda: ["label"])
    task_type: str = "classification"
    #: longest graph distance of a pair (the N of WxNy); None in checkpoints written before it was
    #: stored, where the featurization's ``max_distance`` says it (see ``checkpoint.load_model``)
    pair_distance: int | None = None

    def __post_init__(self) -> None:
        if self.n_weave < 1 or self.n_dense < 0:
            raise IGInputError(f"a weave network needs ≥ 1 weave module and ≥ 0 dense layers, got "
                               f"W{self.n_weave}N{self.n_dense}")
        if self.task_type not in TASK_TYPES:
            raise IGInputError(f"task_type must be one of {TASK_TYPES}, got {self.task_type!r}")

    @property
    def arch(self) -> str:
        """Kearnes et al.'s name, e.g. ``w2n2`` (``w2n?`` when the pair distance is unknown)."""
        return arch_name(self.n_weave, self.pair_distance)

    def describe(self) -> str:
        """``W2N2 (2 weave modules, pairs up to distance 2, 2 dense layers of 128)``."""
        d = self.pair_distance
        pairs = "all pairs" if d is not None and d >= ALL_PAIRS_DISTANCE else f"pairs up to distance {d}"
        return (f"{self.arch.upper()} ({self.n_weave} weave module{'s' * (self.n_weave != 1)}, {pairs}, "
                f"{self.n_dense} dense layer{'s' * (self.n_dense != 1)} of {self.dense_hidden})")

    def to_dict(self) -> dict:
        return asdict(self)


def parse_arch(name: str) -> tuple[int, int]:
    """``"w2n2"`` → (2 weave modules, pairs up to distance 2); ``"w2ninf"``/``"w2n∞"`` → all pairs."""
    match = _ARCH.match(name.strip().lower())
    if not match:
        raise IGInputError(f"architecture {name!r} is not of the form WxNy (x weave modules, pairs up to "
                           f"graph distance y; e.g. w2n2, w1n2, w2ninf)")
    distance = match.group(2)
    n_weave = int(match.group(1))
    distance = ALL_PAIRS_DISTANCE if distance in ("inf", "∞") else int(distance)
    if n_weave < 1 or distance < 1:
        raise IGInputError(f"architecture {name!r}: WxNy needs x ≥ 1 weave modules and pairs up to distance "
                           f"y ≥ 1")
    return n_weave, distance


def arch_name(n_weave: int, pair_distance: int | None) -> str:
    if pair_distance is None:
        return f"w{n_weave}n?"
    return f"w{n_weave}n" + ("inf" if pair_distance >= ALL_PAIRS_DISTANCE else str(pair_distance))


def atoms_of_pairs(h: torch.Tensor, pair_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Representations of the first and second atom of every pair: two ``[B, M, H]``."""
    size = (-1, -1, h.shape[-1])
    first = torch.gather(h, 1, pair_index[..., 0:1].expand(*size))
    second = torch.gather(h, 1, pair_index[..., 1:2].expand(*size))
    return first, second


def pairs_to_atoms(messages: torch.Tensor, pair_index: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """Sum each pair's message into both of its atoms: ``[B, M, H]`` → ``[B, N, H]``."""
    size = (-1, -1, messages.shape[-1])
    out = messages.new_zeros(messages.shape[0], n_atoms, messages.shape[-1])
    out = out.scatter_add(1, pair_index[..., 0:1].expand(*size), messages)
    return out.scatter_add(1, pair_index[..., 1:2].expand(*size), messages)


class WeaveModule(nn.Module):
    """One weave: atoms and pairs each updated from both (the last one may skip the pairs)."""

    def __init__(self, atom_in: int, pair_in: int, atom_out: int, pair_out: int, update_pairs: bool):
        super().__init__()
        self.atom_to_atom = nn.Linear(atom_in, atom_out)
        self.pair_to_atom = nn.Linear(pair_in, atom_out)
        self.atom_mix = nn.Linear(2 * atom_out, atom_out)
        self.update_pairs = update_pairs
        if update_pairs:
            self.atom_to_pair = nn.Linear(2 * atom_in, pair_out)
            self.pair_to_pair = nn.Linear(pair_in, pair_out)
            self.pair_mix = nn.Linear(2 * pair_out, pair_out)

    def forward(self, atoms, pairs, pair_index, atom_mask, pair_mask):
        relu = torch.relu
        pm = pair_mask.unsqueeze(-1)
        aa = relu(self.atom_to_atom(atoms))
        pa = pairs_to_atoms(relu(self.pair_to_atom(pairs)) * pm, pair_index, atoms.shape[1])
        new_atoms = relu(self.atom_mix(torch.cat([aa, pa], -1))) * atom_mask.unsqueeze(-1)
        if not self.update_pairs:
            return new_atoms, pairs
        a_i, a_j = atoms_of_pairs(atoms, pair_index)
        ap = relu(self.atom_to_pair(torch.cat([a_i, a_j], -1))) + \
            relu(self.atom_to_pair(torch.cat([a_j, a_i], -1)))
        pp = relu(self.pair_to_pair(pairs))
        new_pairs = relu(self.pair_mix(torch.cat([ap, pp], -1))) * pm
        return new_atoms, new_pairs


class MaskedBatchNorm(nn.Module):
    """Batch norm over the real atoms only, so padding never shifts the statistics.

    Batches are grouped by molecule size, so running averages would follow the
    last few sizes seen; training therefore resets the eval statistics to those
    of the whole training set after every epoch (:meth:`set_statistics`).
    """

    def __init__(self, features: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(features))
        self.bias = nn.Parameter(torch.zeros(features))
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.ones(features))
        self.momentum, self.eps = momentum, eps

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.training:
            w = mask.unsqueeze(-1)
            count = w.sum().clamp_min(1.0)
            mean = (x * w).sum((0, 1)) / count
            var = ((x - mean) ** 2 * w).sum((0, 1)) / count
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var, self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias

    @torch.no_grad()
    def set_statistics(self, mean: torch.Tensor, var: torch.Tensor) -> None:
        self.running_mean.copy_(mean)
        self.running_var.copy_(var)


class GaussianHistogram(nn.Module):
    """Per feature, soft counts of the molecule's atoms in 11 Gaussian bins: ``[B, N, D]`` → ``[B, 11·D]``."""

    def __init__(self):
        super().__init__()
        self.register_buffer("means", torch.tensor(GAUSSIAN_MEANS))
        self.register_buffer("sigmas", torch.tensor(GAUSSIAN_SIGMAS))

    def forward(self, x: torch.Tensor, atom_mask: torch.Tensor) -> torch.Tensor:
        # bins before features ([B, N, 11, D]): the softmax then runs along contiguous
        # features instead of over 11-value rows, about twice as fast forward and backward
        means, sigmas = self.means[:, None], self.sigmas[:, None]
        z = (x.unsqueeze(-2) - means) / sigmas
        log_density = -0.5 * z ** 2 - torch.log(sigmas)
        membership = torch.softmax(log_density, dim=-2)   # normalised per value, stable far out
        counts = (membership * atom_mask[..., None, None]).sum(1)   # [B, 11, D]
        return counts.transpose(1, 2).flatten(1)          # feature-major, as the dense layer was trained


class WeaveNet(nn.Module):
    """Weave modules → atom layer → masked batch norm → Gaussian histogram → dense layers → one output per task.

    Classification outputs are logits (sigmoid per task); regression outputs are in
    the label's own units (``output_mean``/``output_std`` undo the training scaling).
    """

    def __init__(self, config: WeaveConfig):
        super().__init__()
        self.config = c = config
        modules, atom_in, pair_in = [], c.atom_features, c.pair_features
        for k in range(c.n_weave):
            last = k == c.n_weave - 1
            modules.append(WeaveModule(atom_in, pair_in, c.atom_hidden, c.pair_hidden, update_pairs=not last))
            atom_in, pair_in = c.atom_hidden, c.pair_hidden
        self.weave = nn.ModuleList(modules)
        self.atom_readout = nn.Linear(c.atom_hidden, c.readout_hidden)
        self.norm = MaskedBatchNorm(c.readout_hidden)
        self.histogram = GaussianHistogram()
        dense, width = [], c.readout_hidden * len(GAUSSIAN_MEANS)
        for _ in range(c.n_dense):
            dense += [nn.Linear(width, c.dense_hidden), nn.ReLU()]
            width = c.dense_hidden
        self.dense = nn.Sequential(*dense)
        self.head = nn.Linear(width, len(c.tasks))
        self.register_buffer("output_mean", torch.zeros(len(c.tasks)))
        self.register_buffer("output_std", torch.ones(len(c.tasks)))

    def readout_inputs(self, atoms: torch.Tensor, pairs: torch.Tensor, pair_index: torch.Tensor,
                       atom_mask: torch.Tensor, pair_mask: torch.Tensor) -> torch.Tensor:
        """Per-atom values that the batch norm standardises: ``[B, N, readout_hidden]``."""
        for module in self.weave:
            atoms, pairs = module(atoms, pairs, pair_index, atom_mask, pair_mask)
        return torch.tanh(self.atom_readout(atoms))

    def forward(self, atoms: torch.Tensor, pairs: torch.Tensor, pair_index: torch.Tensor,
                atom_mask: torch.Tensor, pair_mask: torch.Tensor) -> torch.Tensor:
        h = self.readout_inputs(atoms, pairs, pair_index, atom_mask, pair_mask)
        h = self.norm(h, atom_mask)
        out = self.head(self.dense(self.histogram(h, atom_mask)))
        return out * self.output_std + self.output_mean


#: atom-type one-hot slots (the first columns of both featurizations): C, N, O, S, F, Cl, Br, I, P, B, other
_TYPE_SLOTS = 11
#: bond one-hot slots (the first pair columns of both featurizations): single, double, triple, aromatic
_BOND_SLOTS = 4


def carbon_skeleton(atoms: torch.Tensor, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The molecule's carbon skeleton: every atom a plain carbon, every bond single.

    Pairs keep their distance (and ring) features, padding stays zero. As an IG
    baseline it attributes what a molecule has beyond a saturated carbon frame of
    the same shape: heteroatoms, multiple and aromatic bonds.
    """
    real = atoms[..., :_TYPE_SLOTS].sum(-1).clamp(0, 1)
    base_atoms = torch.zeros_like(atoms)
    base_atoms[..., 0] = real
    base_pairs = pairs.clone()
    base_pairs[..., 0] = pairs[..., :_BOND_SLOTS].sum(-1)
    base_pairs[..., 1:_BOND_SLOTS] = 0
    return base_atoms, base_pairs


def baseline_function(kind: str = "zero"):
    """``baselines=`` for :func:`igkit.integrated_gradients` on ``(atoms, pairs)``.

    ``zero``: all-zero features (the paper's). ``carbon``: :func:`carbon_skeleton`.
    ``zero+carbon``: both, attributions averaged (a stack of two baselines).
    """
    if kind not in BASELINES:
        raise IGInputError(f"baseline must be one of {', '.join(BASELINES)}, got {kind!r}")
    if kind == "zero":
        return None

    def draw(inputs):
        atoms, pairs = inputs
        c_atoms, c_pairs = carbon_skeleton(atoms, pairs)
        if kind == "carbon":
            return c_atoms, c_pairs
        return (torch.stack([torch.zeros_like(atoms), c_atoms]), torch.stack([torch.zeros_like(pairs), c_pairs]))

    return draw


def score_function(model: WeaveNet, score: str = "probability"):
    """``forward(atoms, pairs, pair_index, atom_mask, pair_mask) -> [B, tasks]`` for attribution.

    ``score="probability"`` explains the sigmoid probability of a classification
    task (the paper's "softmax score"), ``"logit"`` the value before it; regression
    models always explain their output.
    """
    if score not in ("probability", "logit"):
        raise IGInputError(f"score must be 'probability' or 'logit', got {score!r}")
    squash = score == "probability" and model.config.task_type == "classification"

    def forward(atoms, pairs, pair_index, atom_mask, pair_mask):
        out = model(atoms, pairs, pair_index, atom_mask, pair_mask)
        return torch.sigmoid(out) if squash else out

    return forward
