"""Cases 1 and 2: GoogLeNet IG against the floor of bare passes, and against Captum.

The cost of IG is one forward and one backward pass per path point; the floor
is exactly those passes, chunked the way igkit chunks them, with nothing around
them. Weights do not change the cost, so the network is randomly initialised.
igkit always checks completeness (two forward passes, at α = 0 and 1); Captum
does not by default, so the row compares against that cheaper default, and the
details also give the ratio against Captum asked for its convergence delta.
"""
from __future__ import annotations

from typing import Callable

import torch
from captum.attr import IntegratedGradients

from igkit import integrated_gradients
from igkit.attribution.path import default_batch_size

from .measure import interleaved_medians
from .networks import TARGET, googlenet
from .report import Row


def bare_passes(model: torch.nn.Module, image: torch.Tensor, steps: int, batch_size: int):
    """A callable doing ``steps`` forward+backward passes in igkit's chunks, and nothing else."""
    chunks = [torch.randn(min(batch_size, steps - start), *image.shape[1:])
              for start in range(0, steps, batch_size)]

    def run() -> None:
        for x in chunks:
            x.requires_grad_(True)
            torch.autograd.grad(model(x)[:, TARGET].sum(), x)
    return run


def run_cases(steps: int, size: int, repeats: int) -> list[Row]:
    """Overhead over the floor (case 1) and time relative to Captum (case 2), one shared run."""
    model = googlenet()
    image = torch.randn(1, 3, size, size)
    batch_size = default_batch_size((image,))
    captum = IntegratedGradients(model)
    answers: dict[str, torch.Tensor] = {}

    def igkit_run() -> None:
        answers["igkit"] = integrated_gradients(model, image, target=TARGET, steps=steps).attributions

    def captum_run(delta: bool) -> Callable[[], None]:
        def run() -> None:
            out = captum.attribute(image, target=TARGET, n_steps=steps, method="gausslegendre",
                                   internal_batch_size=batch_size, return_convergence_delta=delta)
            answers["captum"] = out[0] if delta else out
        return run

    end_points = torch.cat([image, torch.zeros_like(image)])

    def completeness_check() -> None:
        with torch.no_grad():
            model(end_points)

    times = interleaved_medians({"igkit": igkit_run, "floor": bare_passes(model, image, steps, batch_size),
                                 "captum": captum_run(False), "captum_with_delta": captum_run(True),
                                 "completeness_check": completeness_check}, repeats)
    scale = float(answers["captum"].abs().max())
    agreement = float((answers["igkit"] - answers["captum"]).abs().max()) / scale
    details = {"model": "googlenet", "image": f"{size}x{size}", "steps": steps, "batch_size": batch_size,
               "repeats": repeats, "seconds": times, "max_attribution_difference_vs_captum": agreement,
               "igkit_over_captum_with_delta": times["igkit"] / times["captum_with_delta"]}
    check = times["completeness_check"] / times["floor"]
    rest = (times["igkit"] - times["floor"] - times["completeness_check"]) / times["floor"]
    why = (f"the completeness check (one forward pass at α = 0 and 1) adds {check:.1%} of the floor at "
           f"{steps} steps, a fixed cost that shrinks as steps grow; everything else adds {rest:.1%}")
    return [
        Row("1 overhead vs floor", f"GoogLeNet {size}px, {steps} steps", times["igkit"], times["floor"],
            f"{steps} bare fwd+bwd", times["igkit"] / times["floor"], 1.05, True, "s", details,
            why_missed=why),
        Row("2 same work vs Captum", f"GoogLeNet {size}px, {steps} steps", times["igkit"], times["captum"],
            "Captum IG", times["igkit"] / times["captum"], 1.0, True, "s", details,
            why_missed=f"Captum skips the completeness check unless asked; against Captum with its "
                       f"convergence delta (the same work) igkit takes "
                       f"{details['igkit_over_captum_with_delta']:.2f}x"),
    ]
