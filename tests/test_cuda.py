"""On a CUDA GPU, igkit gives the CPU's answers: the core with a target given on the CPU, the
vision domain with ``device="cuda"``, and a transformers causal LM moved to the GPU. Skipped, with
the reason, on a machine without one (CI has none; the notes of issue work say where it ran)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import igkit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double().cpu() - b.double().cpu()).norm() / b.double().cpu().norm())


@pytest.mark.parametrize("plan", ["off", "forward"])
@pytest.mark.parametrize("target", [1, torch.tensor([0, 1, 2])], ids=["int", "cpu-tensor"])
def test_core_on_cuda_with_a_cpu_target_gives_the_cpu_answer(plan, target):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 12 * 12, 3)).eval()
    x = torch.rand(3, 3, 12, 12)
    cpu = igkit.integrated_gradients(net, x, target=target, tolerance=0.01, plan=plan)
    gpu = igkit.integrated_gradients(net.cuda(), x.cuda(), target=target, tolerance=0.01, plan=plan)
    assert gpu.attributions.device.type == "cuda"
    assert _relative(gpu.attributions, cpu.attributions) < 1e-3
    assert float(gpu.completeness_error.max()) <= 0.01


def test_vision_on_cuda_gives_the_cpu_answer(tmp_path):
    path = tmp_path / "noise.png"
    Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)).save(path)
    found = {device: igkit.explain("vision", [path], weights="random", size=64, device=device,
                                   integration={"steps": 16})
             for device in ("cpu", "cuda")}
    assert not found["cuda"].skipped, [s.reason for s in found["cuda"].skipped]
    cpu, gpu = found["cpu"][0], found["cuda"][0]
    assert gpu.summary["score_input"] == pytest.approx(cpu.summary["score_input"], rel=1e-4)
    # random weights: F(input) ≈ F(baseline), so the attributions are noise and only their form is compared
    assert gpu.ig.attributions.shape == cpu.ig.attributions.shape
    assert bool(torch.isfinite(gpu.ig.attributions).all())


def test_a_causal_lm_on_cuda_gives_the_cpu_answer():
    pytest.importorskip("transformers", reason="pip install 'igkit[transformers]'")
    from igkit.plugins.text.hf_model import causal_lm, load_causal_lm

    lm = load_causal_lm("ptb-gpt2")
    found = {}
    for device in ("cpu", "cuda"):
        found[device] = igkit.explain("text", ["the shareholders claimed more"],
                                      model=causal_lm(lm.model.to(device), lm.tokenizer), contrast="as")
    assert not found["cuda"].skipped, [s.reason for s in found["cuda"].skipped]
    cpu, gpu = found["cpu"][0], found["cuda"][0]
    assert gpu.summary["completeness_error"] <= 0.001
    assert _relative(torch.as_tensor(gpu.word_attributions), torch.as_tensor(cpu.word_attributions)) < 1e-3
