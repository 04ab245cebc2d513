"""The files of one image (``write_image``, into the fresh folder igkit's runner gives) and the
many-image saturation charts of a run (built from the item folders' CSV files, so a resumed run
gets them whole)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from igkit import read_json, read_table, write_csv, write_json
from igkit.outputs import colours
from igkit.outputs.explains import describe

from .animation import interior_gif, legend_lines, trend_panel
from .attribution import ImageExplanation
from .compare import write_methods
from .figures import (MIN_CAPTION_WIDTH, Cell, Line, Panel, caption_pixels, captioned, enlarged, line_panels,
                      picture_row)
from .records import Provenance, save_array, save_picture, write_matrix
from .render import OVERLAY_SCALE, RenderSettings, as_image, overlay, overlay_peak, paper_rendering

if TYPE_CHECKING:
    import torch


def other_scale(exp: ImageExplanation) -> dict | None:
    """F on the scale not explained (the logit beside a probability, or the reverse), read off the
    saturation curve at α = 1 and α = 0; the baseline's only for a single baseline image."""
    alpha = exp.curve["alpha"]
    if "probability" not in exp.curve or not (float(alpha[0]) == 0.0 and float(alpha[-1]) == 1.0):
        return None
    name, key = ("logit", "score") if exp.options.score == "probability" else ("probability", "probability")
    values = exp.curve[key][0]
    single = exp.options.baseline.kind != "noise"
    return {"name": name, "input": float(values[-1]), "baseline": float(values[0]) if single else None}


def explains(exp: ImageExplanation) -> list[str]:
    """What the pictures explain (igkit.outputs.explains): model, target, F(input) and F(baseline)
    on both scales, the baseline, completeness."""
    return describe(exp.attribution, other_scale(exp))["lines"]


def legend(exp: ImageExplanation) -> str:
    """What an overlay's red and blue mean (igkit.outputs.colours), naming the score explained."""
    return colours.legend(f"the {exp.options.score} of {exp.target.label}")


def caption(exp: ImageExplanation) -> list[str]:
    """The lines under the IG pictures: what is explained, what the colours mean and their scale."""
    return overlay_caption(explains(exp), legend(exp), OVERLAY_SCALE)


def overlay_caption(explained: Sequence[str], legend_text: str, scale: str) -> list[str]:
    """The caption of an overlay: what is explained, the colour legend, the colour scale in use."""
    return [*explained, "overlay: " + legend_text, scale]


def overlay_picture(image: np.ndarray, attributions: "torch.Tensor", render: RenderSettings, lines: Sequence[str],
                    peak: float | None = None) -> np.ndarray:
    """The IG overlay (enlarged when small) with its caption and colour legend under it."""
    picture = enlarged(overlay(image, attributions, render, peak))
    return captioned(picture, caption_pixels(lines, max(picture.shape[1], MIN_CAPTION_WIDTH)))


def write_image(exp: ImageExplanation, d: Path, *, pictures: bool = True) -> list[str]:
    """Every file of one image into ``d``; returns their names (``summary.json`` is igkit's)."""
    image = as_image(exp.pixels)
    made_by = exp.model.provenance
    files = _predictions(exp, d, image, made_by, pictures)
    files += _attribution_maps(exp, d, image, made_by, pictures)
    if pictures:
        files += _panels(exp, d, image, made_by)
    files += _path_files(exp, d, image, made_by, pictures)
    files += write_methods(exp, d, image, made_by, pictures)
    return files


def _predictions(exp: ImageExplanation, d: Path, image: np.ndarray, made_by: Provenance,
                 pictures: bool) -> list[str]:
    write_json(d / "predictions.json", {"top5": [p.as_dict() for p in exp.predictions], **exp.model.describe()})
    write_csv(d / "predictions.csv", ["rank", "index", "label", "probability", "logit"],
              [(r + 1, p.index, p.label, p.probability, p.logit) for r, p in enumerate(exp.predictions)])
    files = ["predictions.json", "predictions.csv"]
    if pictures:
        save_picture((image * 255 + 0.5).astype(np.uint8), d / "input.png", made_by)
        files.append("input.png")
    return files


def _attribution_maps(exp: ImageExplanation, d: Path, image: np.ndarray, made_by: Provenance,
                      pictures: bool) -> list[str]:
    maps = {"ig": (exp.attributions(0), exp.importance(0)),
            "gradients": (exp.gradients, exp.gradient_importance())}
    if exp.misclassified:
        maps["ig_predicted"] = (exp.attributions(1), exp.importance(1))
    render = exp.options.render
    files = []
    for name, (attributions, importance) in maps.items():
        save_array(d / f"attributions_{name}.npy", attributions.numpy())
        write_matrix(d / f"importance_{name}.csv", importance.numpy())
        files += [f"attributions_{name}.npy", f"importance_{name}.csv"]
        if pictures:
            save_picture(paper_rendering(image, importance.numpy(), render), d / f"{name}_paper.png", made_by)
            if name == "ig":  # the overlay of what the run explains carries its caption and legend
                lines = caption(exp)
                save_picture(overlay_picture(image, attributions, render, lines), d / "ig_overlay.png", made_by,
                             lines)
            else:
                save_picture(overlay(image, attributions, render), d / f"{name}_overlay.png", made_by)
            files += [f"{name}_paper.png", f"{name}_overlay.png"]
    if pictures:
        write_json(d / "overlay.json", {**render.describe(), "colours": {"positive": colours.RAISES,
                                                                          "negative": colours.LOWERS,
                                                                          "outline": "yellow"},
                                        "legend": legend(exp), "scale": OVERLAY_SCALE, "explains": explains(exp),
                                        "maps": list(maps), **exp.model.describe()})
        files.append("overlay.json")
    return files


def _panels(exp: ImageExplanation, d: Path, image: np.ndarray, made_by: Provenance) -> list[str]:
    render = exp.options.render
    ig = paper_rendering(image, exp.importance(0).numpy(), render)
    grad = paper_rendering(image, exp.gradient_importance().numpy(), render)
    score = f"{exp.target.label}\nsoftmax {exp.target.probability:.4f}\nlogit {exp.target.logit:.4g}"
    picture_row([Cell("original", image), Cell("label and score", text=score),
                 Cell("integrated gradients (brightness = |attribution|)", ig),
                 Cell("gradients at the image", grad),
                 Cell("IG overlay: red raises, blue lowers", overlay(image, exp.attributions(0), render))],
                d / "figure4.png", f"{exp.target.label}: integrated gradients vs gradients", made_by, caption(exp))
    write_json(d / "figure4.json", {"label": exp.target.as_dict(), "columns": [
        "original", "label and score", "integrated gradients", "gradients at the image"],
        "maps": {"integrated gradients": "importance_ig.csv", "gradients": "importance_gradients.csv"},
        **exp.model.describe()})
    files = ["figure4.png", "figure4.json"]
    if exp.misclassified:
        predicted = paper_rendering(image, exp.importance(1).numpy(), render)
        text = (f"model: {exp.predicted.label}\nsoftmax {exp.predicted.probability:.4f}\n\n"
                f"label: {exp.target.label}\nsoftmax {exp.target.probability:.4f}")
        picture_row([Cell("original", image), Cell("scores", text=text),
                     Cell(f"IG for {exp.predicted.label}", predicted), Cell(f"IG for {exp.target.label}", ig)],
                    d / "figure6.png", "misclassification: the model's label vs the given label", made_by,
                    explains(exp))
        write_json(d / "figure6.json", {"predicted": exp.predicted.as_dict(), "label": exp.target.as_dict(),
                                        "maps": {"predicted": "importance_ig_predicted.csv",
                                                 "label": "importance_ig.csv"}, **exp.model.describe()})
        files += ["figure6.png", "figure6.json"]
    return files


def _path_files(exp: ImageExplanation, d: Path, image: np.ndarray, made_by: Provenance,
                pictures: bool) -> list[str]:
    label = exp.target.label
    trend = trend_panel(exp.interior_alphas, exp.interior_importance)
    write_csv(d / "interior_trend.csv", ["alpha", "mean_pixel_importance"], zip(trend.lines[0].x, trend.lines[0].y))
    alpha = exp.curve["alpha"].tolist()
    probability, logit = exp.curve["probability"][0].tolist(), exp.curve["score"][0].tolist()
    write_csv(d / "saturation.csv", ["alpha", "probability", "logit"], zip(alpha, probability, logit))
    files = ["interior_trend.csv", "saturation.csv"]
    if pictures:
        interior_gif(image, exp.interior_alphas, exp.interior_importance, d / "interior.gif", exp.options.render,
                     made_by, [*explains(exp), *legend_lines(f"the {exp.options.score} of {label}")])
        line_panels([trend], d / "interior_trend.png", f"interior gradients for {label}", made_by)
        line_panels(saturation_panels({label: (alpha, probability, logit)}), d / "saturation.png",
                    f"saturation for {label}", made_by)
        files += ["interior.gif", "interior_trend.png", "saturation.png"]
    if exp.layers:
        curves = {name: (c["alpha"].tolist(), c["l2"][0].tolist(), c["cosine"][0].tolist())
                  for name, c in exp.layers.items()}
        write_csv(d / "layer_saturation.csv", ["layer", "alpha", "l2", "cosine"],
                  [(name, *row) for name, (a, l2, cos) in curves.items() for row in zip(a, l2, cos)])
        files.append("layer_saturation.csv")
        if pictures:
            line_panels(layer_distance_panels(curves), d / "layer_saturation.png",
                        "inner-layer saturation: distance of activations at alpha*image to those at the image",
                        made_by)
            files.append("layer_saturation.png")
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
    """Figure 12 for many images: per layer, L2 and cosine distance to the activations at the image,
    one line per image."""
    layers = list(dict.fromkeys(layer for per_image in curves.values() for layer in per_image))
    panels = []
    for layer in layers:
        for column, distance in ((1, "L2 distance"), (2, "cosine distance")):
            panels.append(Panel(f"{layer}: {distance}", "alpha", distance,
                                [Line(img, c[layer][0], c[layer][column]) for img, c in curves.items()
                                 if layer in c]))
    return panels


def _rows(path: Path) -> list[dict[str, str]]:
    return [row for _, row in read_table(path)[1]]


def redraw_on_shared_scale(item_dirs: Sequence[Path], out: Path) -> None:
    """``--shared-scale``: every image's IG overlay redrawn with full colour at one |value| for the
    whole run (the largest of the images' upper --clip percentiles), from the item folders' own
    files; the caption under the picture and overlay.json say so."""
    from PIL import Image

    settings = read_json(out / "run.json").get("settings", {}) if (out / "run.json").is_file() else {}
    render = RenderSettings(*settings.get("clip", (0.0, 99.5)), polarity=settings.get("polarity", "both"),
                            underlay=settings.get("underlay", "grey"),
                            outline_top=settings.get("outline_top", 10.0))
    found = [d for d in item_dirs if all((d / f).is_file() for f in
                                         ("attributions_ig.npy", "input.png", "overlay.json", "summary.json"))]
    maps = {d: np.load(d / "attributions_ig.npy") for d in found}
    peak = max([overlay_peak(m, render) for m in maps.values()], default=0.0) or 1.0
    for d, attributions in maps.items():
        summary = read_json(d / "summary.json")
        made_by = Provenance(str(summary.get("model")), str(summary.get("weights")),
                             summary.get("random_weights") is True)
        image = np.asarray(Image.open(d / "input.png").convert("RGB"), dtype=np.float64) / 255
        described = read_json(d / "overlay.json")
        described["scale"] = colours.scale_note(peak, True, "(|Σ over channels| of a pixel)")
        lines = overlay_caption(described["explains"], described["legend"], described["scale"])
        save_picture(overlay_picture(image, torch_tensor(attributions), render, lines, peak), d / "ig_overlay.png",
                     made_by, lines)
        write_json(d / "overlay.json", described)


def torch_tensor(array: np.ndarray):
    import torch

    return torch.from_numpy(np.asarray(array, dtype=np.float32))


def write_saturation_overview(item_dirs: Sequence[Path], out: Path, *, pictures: bool = True) -> list[str]:
    """Figures 2 and 12 for many images on one chart, from each image folder's CSV files."""
    curves, layers = {}, {}
    made_by = None
    for d in item_dirs:
        if not (d / "saturation.csv").is_file():
            continue
        if made_by is None:
            summary = read_json(d / "summary.json")
            made_by = Provenance(str(summary.get("model")), str(summary.get("weights")),
                                 bool(summary.get("random_weights")))
        rows = _rows(d / "saturation.csv")
        curves[d.name] = tuple([float(r[k]) for r in rows] for k in ("alpha", "probability", "logit"))
        if (d / "layer_saturation.csv").is_file():
            per_layer: dict[str, tuple[list, list, list]] = {}
            for r in _rows(d / "layer_saturation.csv"):
                a, l2, cos = per_layer.setdefault(r["layer"], ([], [], []))
                a.append(float(r["alpha"]))
                l2.append(float(r["l2"]))
                cos.append(float(r["cosine"]))
            layers[d.name] = per_layer
    if not curves:
        return []
    written = [write_csv(out / "saturation_all.csv", ["image", "alpha", "probability", "logit"],
                         [(n, *row) for n, c in curves.items() for row in zip(*c)])]
    if pictures:
        written.append(line_panels(saturation_panels(curves), out / "saturation_all.png",
                                   f"saturation over {len(curves)} image(s)", made_by))
    if layers:
        written.append(write_csv(out / "layer_saturation_all.csv", ["image", "layer", "alpha", "l2", "cosine"],
                                 [(n, layer, *row) for n, per in layers.items()
                                  for layer, c in per.items() for row in zip(*c)]))
        if pictures:
            written.append(line_panels(layer_panels(layers), out / "layer_saturation_all.png",
                                       f"inner-layer saturation over {len(layers)} image(s)", made_by))
    return [Path(p).name for p in written]
