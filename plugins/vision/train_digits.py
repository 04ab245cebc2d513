"""Train the shipped digits classifier: ``python -m igkit.plugins.vision.train_digits``.

scikit-learn's 1,797 handwritten digits (8×8, 16 grey levels), upsampled to 32×32 light-on-dark
RGB pictures, a fixed stratified split (70 % train, 30 % test, seed 0), a small CNN
(:class:`~igkit.plugins.vision.digits.DigitsNet`) trained with Adam and small random shifts,
scales and rotations, seed 0, one thread: about a minute on one CPU core. It writes
``models/digits.safetensors``, ``models/digits.json`` (config and the measured test accuracy)
and a few test digits the model never saw as example pictures (``models/digit_test_*.png``).
Needs scikit-learn (``pip install 'igkit[app]'``); the shipped model does not.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .digits import CLASSES, MEAN, SIDE, STD, DigitsNet, models_dir

SEED = 0
TEST_SHARE = 0.3
#: one test digit of each of these classes is written as an example picture
EXAMPLE_CLASSES = (0, 3, 7, 8)


def digits_pictures(images: np.ndarray) -> torch.Tensor:
    """scikit-learn's 8×8 digits (0..16) as ``[N, 3, 32, 32]`` pixels in [0, 1], light ink on dark."""
    small = torch.as_tensor(images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    big = F.interpolate(small, size=(SIDE, SIDE), mode="bilinear", align_corners=False)
    return big.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixed train/test split: (train pictures, train labels, test pictures, test labels)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    train_x, test_x, train_y, test_y = train_test_split(data.images, data.target, test_size=TEST_SHARE,
                                                        random_state=SEED, stratify=data.target)
    return (digits_pictures(train_x), torch.as_tensor(train_y), digits_pictures(test_x),
            torch.as_tensor(test_y))


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (pixels - mean) / std


def jitter(pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shifts (±3 px), scales (0.85–1.15) and rotations (±12°): hand-drawn digits are
    rarely centred like the training set's."""
    n = pixels.shape[0]
    angle = (torch.rand(n, generator=generator) - 0.5) * (24 * np.pi / 180)
    scale = 0.85 + 0.3 * torch.rand(n, generator=generator)
    shift = (torch.rand(n, 2, generator=generator) - 0.5) * (6 / SIDE * 2)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
    return F.grid_sample(pixels, grid, align_corners=False, padding_mode="zeros")


def accuracy(model: DigitsNet, pixels: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(normalise(pixels)).argmax(1) == labels).double().mean())


def train(epochs: int = 40, width: int = 16, batch: int = 64, lr: float = 3e-3) -> tuple[DigitsNet, dict]:
    """The trained network and its config (with the measured test accuracy)."""
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    train_x, train_y, test_x, test_y = split()
    model = DigitsNet(width=width)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=generator)
        for k in range(0, len(order), batch):
            rows = order[k:k + batch]
            loss = F.cross_entropy(model(normalise(jitter(train_x[rows], generator))), train_y[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        schedule.step()
    model.eval()
    config = {
        "name": "digits", "architecture": "DigitsNet", "width": width, "classes": CLASSES, "side": SIDE,
        "mean": list(MEAN), "std": list(STD),
        "pixels": "light digit on a dark background, RGB in [0, 1] (scikit-learn's digits / 16, upsampled "
                  "8x8 -> 32x32 bilinear)",
        "data": "sklearn.datasets.load_digits, stratified 70/30 split, seed 0",
        "train_size": len(train_x), "test_size": len(test_x), "epochs": epochs, "seed": SEED,
        "train_accuracy": round(accuracy(model, train_x, train_y), 4),
        "test_accuracy": round(accuracy(model, test_x, test_y), 4),
        "train_seconds": round(time.perf_counter() - start, 1),
        "command": "python -m igkit.plugins.vision.train_digits",
    }
    return model, config


def write_examples(folder: Path) -> list[Path]:
    """One test digit (never trained on) of each of ``EXAMPLE_CLASSES`` as a 32×32 PNG."""
    from PIL import Image

    _, _, test_x, test_y = split()
    written = []
    for digit in EXAMPLE_CLASSES:
        index = int((test_y == digit).nonzero()[0])
        picture = (test_x[index].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        path = folder / f"digit_test_{digit}.png"
        Image.fromarray(picture).save(path, optimize=True)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, default=models_dir(), help="folder for the weights, config and examples")
    parser.add_argument("--epochs", type=int, default=40, help="passes over the 1,257 training digits")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    from safetensors.torch import save_file

    from igkit.io.records import write_json

    torch.set_num_threads(args.threads)
    model, config = train(epochs=args.epochs)
    args.out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(args.out / "digits.safetensors"))
    write_json(args.out / "digits.json", config)
    write_examples(args.out)
    print(f"digits: test accuracy {config['test_accuracy']:.4f} on {config['test_size']} held-out digits "
          f"(train {config['train_accuracy']:.4f}), {config['train_seconds']} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
