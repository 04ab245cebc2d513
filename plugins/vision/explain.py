"""``igkit vision explain``: every picture and file of the paper's Inception section, per image,
for a list of files or folders; a bad file is reported and skipped, finished images are not redone."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from igkit import IGInputError, NonFiniteError, progress, write_summary
from igkit.explain import safe_name

from .animation import interior_gif, trend_panel
from .attribution import ExplainSettings, Explanation, explain_pixels, saturation_modules
from .figures import Cell, Line, Panel, line_panels, picture_row
from .images import collect_images, read_image
from .models import VisionModel
from .records import read_json, read_rows, save_picture, write_json, write_matrix, write_rows
from .render import RenderSettings, as_image, overlay, paper_rendering

#: what one bad image may raise without stopping the others
IMAGE_ERRORS = (IGInputError, NonFiniteError, OSError, torch.OutOfMemoryError)


@dataclass
class FolderReport:
    """Per image: its output folder, or why it was skipped."""

    written: dict[str, str] = field(default_factory=dict)
    already_complete: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"written": self.written, "already_complete": self.already_complete, "failed": self.failed}


def explain_images(model: VisionModel, paths: Sequence[str | Path], out_dir: str | Path,
                   settings: ExplainSettings | None = None, render: RenderSettings | None = None, *,
                   label: int | None = None, force: bool = False, show_progress: bool = True
                   ) -> FolderReport:
    """Explain every image in ``paths`` (files or folders) into ``out_dir/<image name>/``.

    Writes ``report.json`` and the many-image saturation charts into ``out_dir``.
    """
    settings = settings or ExplainSettings()
    render = render or RenderSettings()
    saturation_modules(model, settings)  # a wrong --layers name fails once, not once per image
    files = collect_images(paths)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = run_fingerprint(model, settings, render, label)
    report = FolderReport()
    bar = progress(list(zip(files, item_names(files))), desc="explain images", enabled=show_progress)
    for path, name in bar:
        bar.set_postfix(path.name)
        item_dir = out / name
        if not force and is_complete(item_dir, fingerprint):
            report.already_complete[str(path)] = str(item_dir)
            continue
        try:
            explanation = explain_pixels(model, model.preprocessing.pixels(read_image(path)), settings, label)
            write_explanation(explanation, model, item_dir, render, source=path, fingerprint=fingerprint)
            report.written[str(path)] = str(item_dir)
        except IMAGE_ERRORS as exc:
            report.failed[str(path)] = failure_reason(exc, path)
    done = [Path(d) for d in {**report.written, **report.already_complete}.values()]
    if done:
        write_saturation_overview(done, out, model)
    write_json(out / "report.json", report.as_dict())
    return report


def failure_reason(exc: Exception, path: Path) -> str:
    """The error message without the file name it starts with (the report is keyed by file)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return "ran out of memory on this image; lower --batch-size (path points per pass)"
    return str(exc).removeprefix(f"{path}: ")


def item_names(files: Sequence[Path]) -> list[str]:
    """Output folder names: the file stem, or the full name where two files share a stem."""
    stems = [f.stem for f in files]
    return [safe_name(f.stem if stems.count(f.stem) == 1 else f.name) for f in files]


def run_fingerprint(model: VisionModel, settings: ExplainSettings, render: RenderSettings,
                    label: int | None) -> dict:
    """Everything the outputs depend on; a re-run with the same fingerprint skips finished images."""
    return {"model": model.describe(), "settings": settings.describe(), "render": render.describe(),
            "label": label}


def is_complete(item_dir: Path, fingerprint: dict) -> bool:
    """True when ``summary.json`` (written last) matches this run and every file it lists exists."""
    summary_path = item_dir / "summary.json"
    if not summary_path.is_file():
        return False
    try:
        summary = read_json(summary_path)
    except ValueError:
        return False
    return summary.get("run") == fingerprint and all((item_dir / f).is_file() for f in summary.get("files", []))


def write_explanation(exp: Explanation, model: VisionModel, item_dir: Path, render: RenderSettings, *,
                      source: Path, fingerprint: dict) -> list[str]:
    """Write all pictures and files of one image; ``summary.json`` last (it marks completion)."""
    item_dir.mkdir(parents=True, exist_ok=True)
    image = as_image(exp.pixels)
    files = _predictions(exp, model, item_dir, image)
    files += _attribution_maps(exp, model, item_dir, image, render)
    files += _panels(exp, model, item_dir, image, render)
    files += _path_pictures(exp, model, item_dir, image, render)
    write_summary(item_dir, exp.ig, target=exp.target.label, seconds=exp.seconds, extra={
        "item": str(source), "target_index": exp.target.index,
        "predicted": exp.predicted.as_dict(), "label": exp.target.as_dict(),
        "misclassified": exp.misclassified, "score": fingerprint["settings"]["score"],
        "gradient_evaluations": exp.ig.meta.get("gradient_evaluations"),
        **model.describe(), "run": fingerprint, "files": files})
    return files + ["summary.json"]


def _predictions(exp: Explanation, model: VisionModel, d: Path, image: np.ndarray) -> list[str]:
    save_picture((image * 255 + 0.5).astype(np.uint8), d / "input.png", model)
    write_json(d / "predictions.json", {"top5": [p.as_dict() for p in exp.predictions], **model.describe()})
    write_rows(d / "predictions.csv", ["rank", "index", "label", "probability", "logit"],
               [(r + 1, p.index, p.label, p.probability, p.logit) for r, p in enumerate(exp.predictions)])
    return ["input.png", "predictions.json", "predictions.csv"]


def _attribution_maps(exp: Explanation, model: VisionModel, d: Path, image: np.ndarray,
                      render: RenderSettings) -> list[str]:
    maps = {"ig": (exp.attributions(0), exp.importance(0)),
            "gradients": (exp.gradients, exp.gradient_importance())}
    if exp.misclassified:
        maps["ig_predicted"] = (exp.attributions(1), exp.importance(1))
    files = []
    for name, (attributions, importance) in maps.items():
        np.save(d / f"attributions_{name}.npy", attributions.numpy().astype(np.float32))
        write_matrix(d / f"importance_{name}.csv", importance.numpy())
        save_picture(paper_rendering(image, importance.numpy(), render), d / f"{name}_paper.png", model)
        save_picture(overlay(image, attributions, render), d / f"{name}_overlay.png", model)
        files += [f"attributions_{name}.npy", f"importance_{name}.csv", f"{name}_paper.png",
                  f"{name}_overlay.png"]
    write_json(d / "overlay.json", {**render.describe(), "colours": {"positive": "green", "negative": "red",
                                                                      "outline": "yellow"},
                                    "maps": list(maps), **model.describe()})
    return files + ["overlay.json"]


def _panels(exp: Explanation, model: VisionModel, d: Path, image: np.ndarray,
            render: RenderSettings) -> list[str]:
    ig = paper_rendering(image, exp.importance(0).numpy(), render)
    grad = paper_rendering(image, exp.gradient_importance().numpy(), render)
    score = f"{exp.target.label}\nsoftmax {exp.target.probability:.4f}"
    picture_row([Cell("original", image), Cell("label and score", text=score),
                 Cell("integrated gradients", ig), Cell("gradients at the image", grad)],
                d / "figure4.png", f"{exp.target.label}: integrated gradients vs gradients", model)
    write_json(d / "figure4.json", {"label": exp.target.as_dict(), "columns": [
        "original", "label and score", "integrated gradients", "gradients at the image"],
        "maps": {"integrated gradients": "importance_ig.csv", "gradients": "importance_gradients.csv"},
        **model.describe()})
    files = ["figure4.png", "figure4.json"]
    if exp.misclassified:
        predicted = paper_rendering(image, exp.importance(1).numpy(), render)
        text = (f"model: {exp.predicted.label}\nsoftmax {exp.predicted.probability:.4f}\n\n"
                f"label: {exp.target.label}\nsoftmax {exp.target.probability:.4f}")
        picture_row([Cell("original", image), Cell("scores", text=text),
                     Cell(f"IG for {exp.predicted.label}", predicted), Cell(f"IG for {exp.target.label}", ig)],
                    d / "figure6.png", "misclassification: the model's label vs the given label", model)
        write_json(d / "figure6.json", {"predicted": exp.predicted.as_dict(), "label": exp.target.as_dict(),
                                        "maps": {"predicted": "importance_ig_predicted.csv",
                                                 "label": "importance_ig.csv"}, **model.describe()})
        files += ["figure6.png", "figure6.json"]
    return files


def _path_pictures(exp: Explanation, model: VisionModel, d: Path, image: np.ndarray,
                   render: RenderSettings) -> list[str]:
    interior_gif(image, exp.interior_alphas, exp.interior_importance, d / "interior.gif", render, model)
    trend = trend_panel(exp.interior_alphas, exp.interior_importance)
    line_panels([trend], d / "interior_trend.png", f"interior gradients for {exp.target.label}", model)
    write_rows(d / "interior_trend.csv", ["alpha", "mean_pixel_importance"],
               zip(trend.lines[0].x, trend.lines[0].y))
    alpha = exp.curve["alpha"].tolist()
    probability, logit = exp.curve["probability"][0].tolist(), exp.curve["score"][0].tolist()
    line_panels(saturation_panels({exp.target.label: (alpha, probability, logit)}),
                d / "saturation.png", f"saturation for {exp.target.label}", model)
    write_rows(d / "saturation.csv", ["alpha", "probability", "logit"], zip(alpha, probability, logit))
    files = ["interior.gif", "interior_trend.png", "interior_trend.csv", "saturation.png", "saturation.csv"]
    if exp.layers:
        curves = {name: (c["alpha"].tolist(), c["l2"][0].tolist(), c["cosine"][0].tolist())
                  for name, c in exp.layers.items()}
        line_panels(layer_distance_panels(curves), d / "layer_saturation.png",
                    "inner-layer saturation: distance of activations at alpha*image to those at the image",
                    model)
        write_rows(d / "layer_saturation.csv", ["layer", "alpha", "l2", "cosine"],
                   [(name, *row) for name, (a, l2, cos) in curves.items() for row in zip(a, l2, cos)])
        files += ["layer_saturation.png", "layer_saturation.csv"]
    return files


def saturation_panels(curves: dict[str, tuple[list, list, list]]) -> list[Panel]:
    """Figure 2a and 2b: softmax and pre-softmax score of the label against α, one line per image."""
    return [Panel("softmax score", "alpha", "probability of the label",
                  [Line(name, a, p) for name, (a, p, _) in curves.items()]),
            Panel("pre-softmax score", "alpha", "logit of the label",
                  [Line(name, a, s) for name, (a, _, s) in curves.items()])]


def layer_distance_panels(curves: dict[str, tuple[list, list, list]]) -> list[Panel]:
    """Figure 12 for one image: L2 and cosine distance to the activations at the image, a line per layer."""
    return [Panel(distance, "alpha", distance, [Line(layer, c[0], c[column]) for layer, c in curves.items()])
            for column, distance in ((1, "L2 distance"), (2, "cosine distance"))]


def layer_panels(curves: dict[str, dict[str, tuple[list, list, list]]]) -> list[Panel]:
    """Figure 12 for many images: per layer, L2 and cosine distance to the activations at the image, one line per image."""
    layers = list(dict.fromkeys(layer for per_image in curves.values() for layer in per_image))
    panels = []
    for layer in layers:
        for column, distance in ((1, "L2 distance"), (2, "cosine distance")):
            panels.append(Panel(f"{layer}: {distance}", "alpha", distance,
                                [Line(img, c[layer][0], c[layer][column]) for img, c in curves.items()
                                 if layer in c]))
    return panels


def write_saturation_overview(item_dirs: Sequence[Path], out: Path, model: VisionModel) -> list[Path]:
    """Figures 2 and 12 for many images on one chart, from each image's CSV files."""
    curves, layers = {}, {}
    for d in sorted(item_dirs):
        rows = read_rows(d / "saturation.csv")
        curves[d.name] = tuple([float(r[k]) for r in rows] for k in ("alpha", "probability", "logit"))
        if (d / "layer_saturation.csv").is_file():
            per_layer: dict[str, tuple[list, list, list]] = {}
            for r in read_rows(d / "layer_saturation.csv"):
                a, l2, cos = per_layer.setdefault(r["layer"], ([], [], []))
                a.append(float(r["alpha"]))
                l2.append(float(r["l2"]))
                cos.append(float(r["cosine"]))
            layers[d.name] = per_layer
    written = [line_panels(saturation_panels(curves), out / "saturation_all.png",
                           f"saturation over {len(curves)} image(s)", model),
               write_rows(out / "saturation_all.csv", ["image", "alpha", "probability", "logit"],
                          [(n, *row) for n, c in curves.items() for row in zip(*c)])]
    if layers:
        written.append(line_panels(layer_panels(layers), out / "layer_saturation_all.png",
                                   f"inner-layer saturation over {len(layers)} image(s)", model))
        written.append(write_rows(out / "layer_saturation_all.csv", ["image", "layer", "alpha", "l2", "cosine"],
                                  [(n, layer, *row) for n, per in layers.items()
                                   for layer, c in per.items() for row in zip(*c)]))
    return written

