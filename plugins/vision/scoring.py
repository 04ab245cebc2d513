"""``igkit vision score-methods``: every attribution method scored on pictures whose evidence is known.

The patch task (:mod:`.tasks`): a CNN trained here decides by the colour of a 5×5 patch planted on
noise, so the right answer of an attribution is the patch. The pictures are written as PNG files
and explained by ``igkit vision explain``'s own path (``explain/`` in the output folder, with the
side-by-side grid); the scores are computed from the image folders' maps. Per method:

* **pointing game**: the share of images whose highest-valued pixel lies in the patch;
* **inside**: the share of the (non-negative) pixel map that lies in the patch (patch = 4.3% of
  the image);
* **deletion AUC** (lower is better): the softmax probability of the label while the most
  important pixels are set to black, 1/96 of the pixels (6 of 576) at a time, averaged over the fraction
  removed (area under the curve, fraction 0 → 1);
* **insertion AUC** (higher is better): the same while the most important pixels are put back
  into the blurred image (Gaussian, σ = side / 2: at side / 8 the smeared patch still
  decides the class);
* **SIC / AIC AUC** (higher is better): Performance Information Curves (Kapishnikov et al. 2019,
  following PAIR's ``saliency.metrics.pic``): the blurred image with the top 0.5 %, 1 %, …, 75 % of
  pixels (and a fixed random 1 %) revealed sharp, its information measured as its compressed size
  (lossless WebP bytes, PNG where Pillow lacks WebP), normalised between the blurred and the
  original image; the model's normalised softmax of the original class (SIC) or whether it is
  still the top class (AIC) is plotted against it (kept monotone), interpolated on 1001 points;
  the curve is the median over images, the score its area. Images where the blurred picture
  already scores as high as the original (or is not smaller) are left out, as in PAIR's code
  (counted in the table).

A ``random`` row (a random pixel order per image) shows what chance gives.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

import igkit
from igkit import IGInputError, gaussian_blur, read_json, write_csv, write_json
from igkit.io.records import write_text

from .compare import read_method_maps
from .figures import Line, Panel, line_panels
from .models import VisionModel
from .tasks import CLASSES, SIDE, TASKS, held_out, train_patch_model

#: every method that runs on images (integrated_gradients is always computed)
DEFAULT_METHODS = ("saliency", "grad_x_input", "smoothgrad", "interior_gradient", "guided_backprop", "grad_cam",
                   "occlusion", "expected_gradients", "multi_baseline_ig", "blur_ig", "guided_ig", "xrai")
PIC_THRESHOLDS = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.07, 0.10, 0.13, 0.21, 0.34, 0.5, 0.75)
CURVE_STEPS = 96
PIC_POINTS = 1001
MIN_PROBABILITY = 0.8
#: blur of the insertion canvas and the PIC pictures, as a share of the side: at 1/8 (3 px) the smeared
#: patch still decides the class (mean softmax 0.96 on 16 pictures), at 1/2 (12 px) it no longer does (0.33)
BLUR_FRACTION = 0.5
METRICS = ("pointing_game", "inside", "deletion_auc", "insertion_auc", "sic_auc", "aic_auc")
HIGHER_IS_BETTER = {"pointing_game": True, "inside": True, "deletion_auc": False, "insertion_auc": True,
                    "sic_auc": True, "aic_auc": True}


@dataclass
class MethodScores:
    """One method over all images: per-image values, mean curves and the PIC curves."""

    method: str
    per_image: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS[:4]})
    deletion: list[np.ndarray] = field(default_factory=list)
    insertion: list[np.ndarray] = field(default_factory=list)
    sic: list[np.ndarray] = field(default_factory=list)
    aic: list[np.ndarray] = field(default_factory=list)

    def table_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"method": self.method, "images": len(self.per_image["inside"])}
        for metric in METRICS[:4]:
            row[metric] = float(np.mean(self.per_image[metric]))
        for name, curves in (("sic", self.sic), ("aic", self.aic)):
            row[f"{name}_auc"] = float(np.trapezoid(np.median(curves, 0), pic_x())) if curves else float("nan")
            row[f"{name}_images"] = len(curves)
        return row


def pic_x() -> np.ndarray:
    return np.append(np.linspace(0.0, 1.0, PIC_POINTS - 1, endpoint=False), 1.0)


def curve_fractions() -> np.ndarray:
    return np.arange(CURVE_STEPS + 1) / CURVE_STEPS


def info_bytes(image: np.ndarray) -> int:
    """Compressed size of an ``[H, W, 3]`` uint8 picture: lossless WebP (PAIR's choice), else PNG."""
    from PIL import Image, features

    buffer = io.BytesIO()
    if features.check("webp"):
        Image.fromarray(image).save(buffer, format="webp", lossless=True, quality=100)
    else:
        Image.fromarray(image).save(buffer, format="png", optimize=True)
    return buffer.tell()


def _uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


class Scorer:
    """The model's probabilities on edited copies of one image, and the metrics built on them."""

    def __init__(self, model: VisionModel, x: torch.Tensor, label: int, mask: np.ndarray, seed: int):
        self.model, self.x, self.label, self.mask = model, x, label, mask
        self.sigma = BLUR_FRACTION * x.shape[-1]
        self.blurred = gaussian_blur(x.unsqueeze(0), self.sigma)[0]
        generator = np.random.default_rng(seed)
        pixels = x.shape[-2] * x.shape[-1]
        self.random_mask = np.zeros(pixels, dtype=bool)
        self.random_mask[generator.choice(pixels, size=max(1, pixels // 100), replace=False)] = True
        self.random_mask = self.random_mask.reshape(x.shape[-2:])
        self.top = None

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([self.model.logits(images[i:i + 256].to(self.model.device)).softmax(1).cpu()
                              for i in range(0, len(images), 256)])

    def score(self, importance: np.ndarray) -> dict[str, Any]:
        flat = importance.ravel()
        order = torch.from_numpy(np.argsort(-flat, kind="stable").copy())
        positive = np.clip(importance, 0, None)
        out: dict[str, Any] = {
            "pointing_game": float(self.mask.ravel()[int(np.argmax(flat))]),
            "inside": float(positive[self.mask].sum() / positive.sum()) if positive.sum() > 0 else 0.0}
        counts = np.round(curve_fractions() * flat.size).astype(int)
        deleted, inserted = [], []
        for n in counts:
            keep = torch.ones(flat.size, dtype=torch.bool)
            keep[order[:n]] = False
            keep = keep.reshape(self.x.shape[-2:])
            deleted.append(torch.where(keep, self.x, torch.zeros_like(self.x)))
            inserted.append(torch.where(keep, self.blurred, self.x))
        probs = self.probabilities(torch.stack(deleted + inserted))[:, self.label].numpy().astype(np.float64)
        out["deletion_curve"], out["insertion_curve"] = probs[:len(counts)], probs[len(counts):]
        out["deletion_auc"] = float(np.trapezoid(out["deletion_curve"], curve_fractions()))
        out["insertion_auc"] = float(np.trapezoid(out["insertion_curve"], curve_fractions()))
        out.update(self.pic(importance))
        return out

    def _bokeh(self, reveal: np.ndarray) -> np.ndarray:
        shown = torch.from_numpy(reveal | self.random_mask)
        return _uint8(torch.where(shown, self.x, self.blurred))

    def pic(self, importance: np.ndarray) -> dict[str, Any]:
        """SIC and AIC curves of one image (None where PAIR's conditions leave it out)."""
        original = _uint8(self.x)
        blurred = self._bokeh(np.zeros(importance.shape, dtype=bool))
        pictures = [original, blurred] + [self._bokeh(importance >= np.quantile(importance, 1 - t))
                                          for t in PIC_THRESHOLDS]
        probs = self.probabilities(torch.stack([torch.from_numpy(p).permute(2, 0, 1).float() / 255
                                                for p in pictures]))
        top = int(probs[0].argmax())
        softmax = probs[:, top].numpy().astype(np.float64)
        correct = (probs.argmax(1) == top).numpy().astype(np.float64)
        sizes = np.array([info_bytes(p) for p in pictures], dtype=np.float64)
        info = np.clip((sizes[2:] - sizes[1]) / (sizes[0] - sizes[1]), 0, 1) if sizes[0] > sizes[1] else None
        out: dict[str, Any] = {"sic_curve": None, "aic_curve": None}
        if info is None:
            return out
        if softmax[0] >= MIN_PROBABILITY and softmax[1] < softmax[0]:
            out["sic_curve"] = _pic_curve(info, (softmax[2:] - softmax[1]) / (softmax[0] - softmax[1]))
        if correct[1] < correct[0]:
            out["aic_curve"] = _pic_curve(info, correct[2:])
        return out


def _pic_curve(info: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """PAIR's curve: monotone normalised prediction against normalised information, on PIC_POINTS."""
    prediction = np.maximum.accumulate(np.clip(prediction, 0, 1))
    points = sorted([*zip(info.tolist(), prediction.tolist()), (0.0, 0.0), (1.0, 1.0)])
    xs, ys = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    # interp1d in PAIR takes the last of equal x; np.interp needs increasing x: keep the largest y
    unique = np.unique(xs)
    best = np.array([ys[xs == u].max() for u in unique])
    curve = np.interp(pic_x()[:-1], unique, best)
    return np.append(curve, 1.0)


@dataclass
class ScoreReport:
    rows: list[dict[str, Any]]
    scores: dict[str, MethodScores]
    images: int
    explain_dir: Path


def score_methods(out: str | Path, *, task: str = "patch", images: int = 64, methods: Sequence[str] = DEFAULT_METHODS,
                  seed: int = 0, train_steps: int = 200, integration: dict[str, Any] | None = None,
                  overwrite: bool = False, show_progress: bool = False, **settings: Any) -> ScoreReport:
    """Train the task's model, explain ``images`` held-out pictures with IG and ``methods`` through
    igkit's runner (into ``out/explain``), score every method; write ``scores.csv``/``.json``/``.md``,
    ``scores_per_image.csv`` and ``scores.png`` into ``out``."""
    if task not in TASKS:
        raise IGInputError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    if images < 1:
        raise IGInputError(f"--images must be at least 1, got {images}")
    out = Path(out)
    model = train_patch_model(seed, train_steps)
    x, y, masks = held_out(images, seed)
    picture_dir = out / "images"
    picture_dir.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    paths = []
    for i in range(images):
        path = picture_dir / f"patch{i:04d}.png"
        Image.fromarray(_uint8(x[i])).save(path)
        paths.append(str(path))
    np.save(out / "images" / "masks.npy", masks.numpy())
    write_csv(out / "images" / "truth.csv", ["image", "label", "class", "patch_top", "patch_left"],
              [(Path(p).name, CLASSES[int(y[i])], int(y[i]), *np.argwhere(masks[i].numpy())[0].tolist())
               for i, p in enumerate(paths)])
    report = igkit.explain_to_folder("vision", paths, out / "explain", model=model, methods=list(methods),
                                     integration=integration, overwrite=overwrite, show_progress=show_progress,
                                     **{"frames": 2, "curve_points": 2, "layers": [],
                                        "reference": [str(picture_dir)], **settings})
    if report.skipped:
        first = report.skipped[0]
        raise IGInputError(f"{len(report.skipped)} picture(s) were not explained, e.g. {first['source']}: "
                           f"{first['reason']}")
    index = {p: i for i, p in enumerate(paths)}
    scores: dict[str, MethodScores] = {}
    per_image = []
    for folder in report.folders:
        summary = read_json(folder / "summary.json")
        i = index[summary["item"]["source"]]
        names, maps = read_method_maps(folder) if (folder / "methods.csv").is_file() else \
            (["integrated_gradients"], {"integrated_gradients": np.loadtxt(folder / "importance_ig.csv",
                                                                            delimiter=",", ndmin=2)})
        maps["random"] = np.random.default_rng(seed * 100003 + i).random(maps[names[0]].shape)
        pixels = torch.from_numpy(np.array(Image.open(paths[i]).convert("RGB"))).permute(2, 0, 1).float() / 255
        scorer = Scorer(model, pixels, int(summary["target_index"]), masks[i].numpy(), seed + i)
        for method in [*names, "random"]:
            found = scorer.score(maps[method])
            entry = scores.setdefault(method, MethodScores(method))
            for metric in METRICS[:4]:
                entry.per_image[metric].append(found[metric])
            entry.deletion.append(found["deletion_curve"])
            entry.insertion.append(found["insertion_curve"])
            if found["sic_curve"] is not None:
                entry.sic.append(found["sic_curve"])
            if found["aic_curve"] is not None:
                entry.aic.append(found["aic_curve"])
            per_image.append((Path(paths[i]).name, method, *(found[m] for m in METRICS[:4])))
    rows = [s.table_row() for s in scores.values()]
    write_scores(out, rows, scores, per_image, model, images, list(methods), seed)
    return ScoreReport(rows, scores, images, out / "explain")


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    head = ["method", "pointing game ↑", "inside ↑", "deletion AUC ↓", "insertion AUC ↑", "SIC AUC ↑",
            "AIC AUC ↑", "images (SIC/AIC)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append(f"| {r['method']} | {r['pointing_game']:.3f} | {r['inside']:.3f} | {r['deletion_auc']:.3f} | "
                     f"{r['insertion_auc']:.3f} | {r['sic_auc']:.3f} | {r['aic_auc']:.3f} | "
                     f"{r['images']} ({r['sic_images']}/{r['aic_images']}) |")
    return "\n".join(lines) + "\n"


def write_scores(out: Path, rows: list[dict[str, Any]], scores: dict[str, MethodScores], per_image: list,
                 model: VisionModel, images: int, methods: list[str], seed: int) -> None:
    columns = ["method", "images", *METRICS[:4], "sic_auc", "sic_images", "aic_auc", "aic_images"]
    write_csv(out / "scores.csv", columns, [[r[c] for c in columns] for r in rows])
    write_csv(out / "scores_per_image.csv", ["image", "method", *METRICS[:4]], per_image)
    write_json(out / "scores.json", {
        "task": "patch", "images": images, "seed": seed, "methods": methods, "table": rows,
        "higher_is_better": HIGHER_IS_BETTER, "curve_fractions": curve_fractions().tolist(),
        "mean_deletion_curve": {m: np.mean(s.deletion, 0).tolist() for m, s in scores.items()},
        "mean_insertion_curve": {m: np.mean(s.insertion, 0).tolist() for m, s in scores.items()},
        "pic_thresholds": list(PIC_THRESHOLDS), "pic_min_probability": MIN_PROBABILITY,
        "blur_sigma_pixels": BLUR_FRACTION * SIDE, "explain_folder": "explain", **model.describe()})
    write_text(out / "scores.md", f"Patch task, {images} held-out pictures, model {model.name} "
                                  f"({model.weights}).\n\n" + markdown_table(rows))
    fractions = curve_fractions().tolist()
    x = pic_x().tolist()
    panels = [Panel("deletion (lower is better)", "fraction of pixels set to black", "softmax of the label",
                    [Line(m, fractions, np.mean(s.deletion, 0).tolist()) for m, s in scores.items()]),
              Panel("insertion (higher is better)", "fraction of pixels put back into the blurred image",
                    "softmax of the label",
                    [Line(m, fractions, np.mean(s.insertion, 0).tolist()) for m, s in scores.items()]),
              Panel("SIC: median softmax information curve", "normalised information (WebP bytes)",
                    "normalised softmax", [Line(m, x, np.median(s.sic, 0).tolist()) for m, s in scores.items()
                                           if s.sic]),
              Panel("AIC: median accuracy information curve", "normalised information (WebP bytes)",
                    "top class kept", [Line(m, x, np.median(s.aic, 0).tolist()) for m, s in scores.items()
                                       if s.aic])]
    line_panels(panels, out / "scores.png", f"patch task: attribution methods on {images} held-out pictures",
                model.provenance)
