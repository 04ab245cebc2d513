"""A task whose answer is known: the class of a picture is the colour of a small patch planted at
a random place on a dark noisy background, so the evidence is exactly the patch's pixels.

``make_images`` draws pictures with their labels and patch masks; ``train_patch_model`` trains
the small CNN of ``tests/test_vision_patch.py`` (about 2 s on one CPU thread) and wraps it as a
:class:`VisionModel`. Used by ``igkit vision score-methods --task patch`` and the tests.
"""
from __future__ import annotations

import torch
from torch import nn

from .models import VisionModel
from .preprocessing import Preprocessing

SIDE, PATCH = 24, 5
CLASSES = ["red patch", "green patch", "blue patch"]
COLOURS = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]])
NO_PATCH = -1
TASKS = ("patch",)


def make_images(n: int, generator: torch.Generator, empty_share: float = 0.0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Noise in [0, 0.5] with one coloured PATCH×PATCH square (none for ``empty_share`` of the
    pictures, labelled NO_PATCH); labels; patch masks ``[n, SIDE, SIDE]``."""
    x = 0.5 * torch.rand(n, 3, SIDE, SIDE, generator=generator)
    y = torch.randint(0, len(CLASSES), (n,), generator=generator)
    y[torch.rand(n, generator=generator) < empty_share] = NO_PATCH
    corners = torch.randint(0, SIDE - PATCH + 1, (n, 2), generator=generator)
    masks = torch.zeros(n, SIDE, SIDE, dtype=torch.bool)
    for i, (r, c) in enumerate(corners.tolist()):
        if y[i] != NO_PATCH:
            x[i, :, r:r + PATCH, c:c + PATCH] = COLOURS[y[i]].view(3, 1, 1)
            masks[i, r:r + PATCH, c:c + PATCH] = True
    return x, y, masks


def train_patch_model(seed: int = 0, steps: int = 200, pictures: int = 2048) -> VisionModel:
    """The patch CNN: 3 conv layers (nn.ReLU modules), global max pooling, a linear head, trained
    with Adam on ``pictures`` pictures (a quarter without a patch, target uniform: black, the
    baseline, then scores about 1/3 for every class)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed + 1)
        x, y, _ = make_images(pictures, generator, empty_share=0.25)
        targets = torch.full((len(y), len(CLASSES)), 1 / len(CLASSES))
        targets[y != NO_PATCH] = nn.functional.one_hot(y[y != NO_PATCH], len(CLASSES)).float()
        net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1, stride=2),
                            nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1),
                            nn.Flatten(), nn.Linear(16, len(CLASSES)))
        model = VisionModel(net, Preprocessing(resize_size=None, crop_size=None, mean=(0.25,) * 3,
                                               std=(0.25,) * 3), list(CLASSES), name="patch-cnn",
                            weights=f"trained here (seed {seed}, {steps} steps)")
        optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
        net.train()
        for _ in range(steps):
            batch = torch.randint(0, len(x), (64,), generator=generator)
            loss = nn.functional.cross_entropy(model.logits(x[batch]), targets[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        net.eval()
    return model


def held_out(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` pictures the model never saw (each has a patch)."""
    return make_images(n, torch.Generator().manual_seed(seed + 2))
