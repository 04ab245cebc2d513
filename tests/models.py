"""Small models with known behaviour, shared by the core tests."""
from __future__ import annotations

import torch
from torch import nn


class TinyCNN(nn.Module):
    """A conv net with ReLU, pooling and a 3-class head (for Captum agreement)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 8, 3, padding=1), nn.Tanh())
        self.head = nn.Linear(8 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class TwoInputNet(nn.Module):
    """Two inputs of different shapes combined non-linearly (like atoms and pairs)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(5, 8)
        self.b = nn.Linear(12, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.a(x1)) * torch.sigmoid(self.b(x2.flatten(1)))
        return self.out(h)


class SaturatingReLUNet(nn.Module):
    """A ReLU network under a sigmoid: piecewise-smooth along the path, like real classifiers."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                                  nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(4 * self.body(x)[:, 0])
