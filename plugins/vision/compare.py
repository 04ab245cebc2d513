"""Methods side by side (``igkit vision explain ... --methods a,b,c``): per image the maps of every
method (``importance_<method>.csv``, ``attributions_<method>.npy``), ``methods.csv``/``.json`` and
``methods.png``; for the run ``methods_all.csv`` and the grid ``methods_grid.png``/``.json`` (one
row per image, one column per method), built from the image folders' files so a resumed run
gets them whole."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from igkit import read_json, read_table, write_csv, write_json

from .attribution import ImageExplanation
from .figures import GridRow, column_scales, method_grid
from .methods import describe_options
from .records import Provenance, save_array, write_matrix

IG = "integrated_gradients"
#: images drawn on the run's grid at most (the CSV and JSON hold all)
MAX_GRID_ROWS = 24
COLUMNS = ["method", "importance_file", "attribution_sum", "importance_sum", "importance_max", "peak_row",
           "peak_col"]
MAP_RULE = ("pixel map = sum over colour channels of |attribution| (Eq. 1 of the paper), as for IG; "
            "grad_cam: its upsampled map (>= 0); xrai: the attribution density of the region a pixel joined "
            "with (negative values drawn as 0)")
SCALE_RULE = "colour: one scale per method (column) shared by all images: 0 to its 99.5th percentile"
ITEM_SCALE_RULE = "colour: one scale per method: 0 to its 99.5th percentile on this image"


def importance_file(method: str) -> str:
    return "importance_ig.csv" if method == IG else f"importance_{method}.csv"


def write_methods(exp: ImageExplanation, d: Path, image: np.ndarray, made_by: Provenance,
                  pictures: bool) -> list[str]:
    """The other methods' files of one image (nothing when none was asked for)."""
    names = exp.method_names
    if not names:
        return []
    files = []
    rows = []
    maps = {}
    for method in [IG, *names]:
        attributions = exp.method_attributions(method)
        importance = exp.method_importance(method).numpy().astype(np.float64)
        maps[method] = importance
        if method != IG:  # IG's own files are written with the paper's pictures
            save_array(d / f"attributions_{method}.npy", attributions.numpy())
            write_matrix(d / importance_file(method), importance)
            files += [f"attributions_{method}.npy", importance_file(method)]
        peak = np.unravel_index(int(np.argmax(importance)), importance.shape)
        rows.append((method, importance_file(method), float(attributions.double().sum()),
                     float(importance.sum()), float(importance.max()), int(peak[0]), int(peak[1])))
    write_csv(d / "methods.csv", COLUMNS, rows)
    size = tuple(image.shape[:2])
    write_json(d / "methods.json", {
        "methods": [IG, *names], "files": {m: importance_file(m) for m in [IG, *names]},
        "options": {m: describe_options(m, exp.model, exp.options_settings, size) for m in names},
        "pixel_map": MAP_RULE, "colour_scale": SCALE_RULE, "label": exp.target.as_dict(),
        **exp.model.describe()})
    files += ["methods.csv", "methods.json"]
    if pictures:
        row = GridRow(f"{exp.target.label}", image, maps)
        method_grid([row], [IG, *names], d / "methods.png", f"{exp.target.label}: methods side by side",
                    made_by, column_scales([row], [IG, *names]), note=ITEM_SCALE_RULE)
        files.append("methods.png")
    return files


def read_method_maps(d: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """The methods of an image folder (from ``methods.csv``) and their pixel maps (from the CSVs)."""
    rows = [row for _, row in read_table(d / "methods.csv")[1]]
    methods = [r["method"] for r in rows]
    return methods, {r["method"]: np.loadtxt(d / r["importance_file"], delimiter=",", ndmin=2) for r in rows}


def write_method_overview(item_dirs: Sequence[Path], out: Path, *, pictures: bool = True) -> list[str]:
    """``methods_all.csv`` for the run and the grid ``methods_grid.png``/``.json``, from the folders."""
    folders = [d for d in item_dirs if (d / "methods.csv").is_file()]
    if not folders:
        return []
    table = []
    grid: list[GridRow] = []
    methods: list[str] = []
    made_by = None
    for d in folders:
        summary = read_json(d / "summary.json")
        if made_by is None:
            made_by = Provenance(str(summary.get("model")), str(summary.get("weights")),
                                 bool(summary.get("random_weights")))
        label = (summary.get("label") or {}).get("label", "")
        for _, row in read_table(d / "methods.csv")[1]:
            numbers = [float(row[c]) for c in COLUMNS[2:5]] + [int(row[c]) for c in COLUMNS[5:]]
            table.append((d.name, (summary.get("item") or {}).get("source", ""), label, row["method"],
                          row["importance_file"], *numbers))
        names, maps = read_method_maps(d)
        methods.extend(m for m in names if m not in methods)
        if pictures and len(grid) < MAX_GRID_ROWS and (d / "input.png").is_file():
            from PIL import Image

            image = np.asarray(Image.open(d / "input.png").convert("RGB"), dtype=np.float64) / 255
            grid.append(GridRow(f"{d.name.rsplit('-', 1)[0]}\n{label}", image, maps))
    written = [write_csv(out / "methods_all.csv", ["folder", "source", "label", *COLUMNS], table)]
    if pictures and grid:
        scales = column_scales(grid, methods)
        shown = f"{len(grid)} of {len(folders)} images" if len(grid) < len(folders) else f"{len(grid)} image(s)"
        written.append(method_grid(grid, methods, out / "methods_grid.png", f"methods side by side, {shown}",
                                   made_by, scales, note=SCALE_RULE))
        written.append(write_json(out / "methods_grid.json", {
            "rows": [d.name for d in folders[:len(grid)]], "methods": methods,
            "files": {m: importance_file(m) for m in methods}, "colour_scale": SCALE_RULE,
            "scale_max": scales, "pixel_map": MAP_RULE}))
    return [Path(p).name for p in written]
