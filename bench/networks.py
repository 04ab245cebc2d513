"""The benchmark's image network, importable without Captum (memory probes must not pay for it)."""
from __future__ import annotations

import torch
import torchvision

#: the class whose score is attributed (any class costs the same)
TARGET = 0


def googlenet() -> torch.nn.Module:
    """GoogLeNet in eval mode (no auxiliary heads), random weights, no parameter gradients."""
    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
