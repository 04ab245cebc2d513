"""Case 5: peak resident memory of GoogLeNet IG, igkit's default batching vs Captum unbatched.

Each measurement runs in a fresh Python process (``python -m bench.memory``), so
one run's peak cannot hide another's. Captum without ``internal_batch_size``
holds every path point's activations at once, so its peak grows with the step
count; where that would pass the memory cap the peak is measured at fewer steps
and extrapolated along the measured per-step slope.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

from .networks import TARGET, googlenet
from .report import Row

GIB = 2 ** 30
REPO = Path(__file__).resolve().parents[1]


def peak_rss_bytes() -> int:
    """This process's high-water mark of resident memory (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (not Linux?)")


def measure_in_subprocess(tool: str, steps: int, size: int, threads: int) -> dict:
    """Peak memory of one IG run by ``tool`` in a fresh process."""
    command = [sys.executable, "-m", "bench.memory", "--tool", tool, "--steps", str(steps),
               "--size", str(size), "--threads", str(threads)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_case(igkit_steps: list[int], captum_probe_steps: int, size: int, threads: int,
             cap_gib: float) -> list[Row]:
    """igkit at each step count (flat?) vs Captum at the largest step count under ``cap_gib``."""
    target_steps = max(igkit_steps)
    ours = {s: measure_in_subprocess("igkit", s, size, threads) for s in igkit_steps}
    low = measure_in_subprocess("captum", captum_probe_steps, size, threads)
    high = measure_in_subprocess("captum", 2 * captum_probe_steps, size, threads)
    slope = (high["peak"] - low["peak"]) / captum_probe_steps
    affordable = int(captum_probe_steps + (cap_gib * GIB - low["peak"]) / max(slope, 1.0))
    captum_steps = max(2 * captum_probe_steps, min(target_steps, affordable))
    measured = high if captum_steps == 2 * captum_probe_steps else \
        measure_in_subprocess("captum", captum_steps, size, threads)
    extrapolated = measured["peak"] + slope * (target_steps - captum_steps)
    igkit_peak = ours[target_steps]["peak"]
    igkit_slope = (igkit_peak - ours[min(igkit_steps)]["peak"]) / max(1, target_steps - min(igkit_steps))
    details = {
        "image": f"{size}x{size}", "steps": target_steps,
        "igkit_peak_gib": {s: r["peak"] / GIB for s, r in ours.items()},
        "igkit_batch_size": ours[target_steps]["batch_size"],
        "igkit_slope_mib_per_step": igkit_slope / 2 ** 20,
        "process_before_ig_gib": ours[target_steps]["before"] / GIB,
        "captum_peak_gib": {captum_probe_steps: low["peak"] / GIB, 2 * captum_probe_steps: high["peak"] / GIB,
                            captum_steps: measured["peak"] / GIB},
        "captum_slope_mib_per_step": slope / 2 ** 20,
        "captum_measured_steps": captum_steps,
        "captum_at_target": "measured" if captum_steps == target_steps else
        f"extrapolated from {captum_steps} steps (cap {cap_gib} GiB)",
    }
    reference = "Captum, unbatched" + ("" if captum_steps == target_steps else ", extrapolated")
    return [Row("5 memory", f"GoogLeNet {size}px, {target_steps} steps, peak RSS", igkit_peak / GIB,
                extrapolated / GIB, reference, igkit_peak / extrapolated, 3.0, True, "GiB", details,
                goal_on_igkit=True)]


def _probe(tool: str, steps: int, size: int) -> dict:
    """One run; each tool imports only what it needs, so neither pays for the other's imports."""
    from igkit.attribution.path import default_batch_size

    model = googlenet()
    image = torch.randn(1, 3, size, size)
    before = peak_rss_bytes()
    if tool == "igkit":
        from igkit import integrated_gradients
        integrated_gradients(model, image, target=TARGET, steps=steps)
    else:
        from captum.attr import IntegratedGradients
        IntegratedGradients(model).attribute(image, target=TARGET, n_steps=steps, method="gausslegendre")
    return {"tool": tool, "steps": steps, "before": before, "peak": peak_rss_bytes(),
            "batch_size": default_batch_size((image,))}


def main() -> None:
    parser = argparse.ArgumentParser(description="peak memory of one GoogLeNet IG run (one process)")
    parser.add_argument("--tool", choices=("igkit", "captum"), required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps(_probe(args.tool, args.steps, args.size)))


if __name__ == "__main__":
    main()
