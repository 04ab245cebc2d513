"""A small ReLU CNN trained in a few seconds on a synthetic task, for case 3.

Task: a 24×24 RGB noise image holds one bright 6×6 square; the class is the
square's colour (red, green or blue). A trained net is confident, so its softmax
probability saturates along the path from a black image, and its ReLUs put kinks
in the path: the conditions under which step counts matter.
"""
from __future__ import annotations

import torch
from torch import nn

from .convergence import Problem, Workload

SIZE, SQUARE, CLASSES = 24, 6, 3


def synthetic_batch(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images and their labels (the colour channel of the square)."""
    images = 0.3 * torch.randn(n, CLASSES, SIZE, SIZE, generator=generator)
    labels = torch.randint(0, CLASSES, (n,), generator=generator)
    corners = torch.randint(0, SIZE - SQUARE + 1, (n, 2), generator=generator)
    for i in range(n):
        r, c = corners[i].tolist()
        images[i, labels[i], r:r + SQUARE, c:c + SQUARE] += 1.5
    return images, labels


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (SIZE // 4) ** 2, 64), nn.ReLU(), nn.Linear(64, CLASSES))


def train(steps: int, seed: int = 0) -> tuple[nn.Module, float]:
    """Adam on ``steps`` fresh synthetic batches (deterministic); returns the net and its test accuracy."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = small_cnn()
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(steps):
        x, y = synthetic_batch(64, generator)
        loss = nn.functional.cross_entropy(net(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    net.eval()
    x, y = synthetic_batch(500, generator)
    with torch.no_grad():
        accuracy = float((net(x).argmax(1) == y).float().mean())
    return net, accuracy


def workload(n_examples: int, train_steps: int) -> Workload:
    """Softmax probability of the true colour, on correctly classified test images, black baseline."""
    net, accuracy = train(train_steps)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(net(x), dim=1)

    x, y = synthetic_batch(4 * n_examples, torch.Generator().manual_seed(1))
    with torch.no_grad():
        correct = (forward(x).argmax(1) == y).nonzero().flatten()[:n_examples].tolist()
    problems = [Problem((x[i:i + 1],), (torch.zeros_like(x[i:i + 1]),), int(y[i])) for i in correct]
    return Workload("small ReLU CNN", forward, problems,
                    {"model": "small ReLU CNN (synthetic colour task)", "test_accuracy": accuracy,
                     "train_steps": train_steps})
