"""Vision on igkit's one explain path, fed as a new user would: colliding and non-ASCII names,
a replaced file, a second run into the same --out, Ctrl-C, bad files among good ones, BOM/CRLF
and non-UTF-8 box tables, and user errors that must end in one ``igkit: error:`` line.

The model is torchvision's squeezenet1_1 with ``--weights random`` (seeded, so every run gets the
same untrained network) at 32×32: a real network whose scores move along the path. Each check
compares an item's files with those of a run that had that image alone, so a mix-up between
items cannot pass.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from igkit.cli.main import main

FAST = ["--model", "squeezenet1_1", "--weights", "random", "--size", "32", "--steps", "4", "--frames", "2",
        "--curve-points", "2", "--layers", "", "--quiet"]


def _picture(path: Path, seed: int, size=(40, 36)) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.random((size[1], size[0], 3))
    pixels[:, : size[0] // 2] *= rng.random(3)  # some structure, so attributions differ per picture
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((pixels * 255).astype(np.uint8)).save(path)
    return path


def _explain(out: Path, *items, extra=()) -> int:
    return main(["vision", "explain", *map(str, items), "--out", str(out), *FAST, *extra])


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def _by_source(out: Path) -> dict[str, dict]:
    return {e["source"]: e for e in _report(out)["items"]}


def _ig(out: Path, entry: dict) -> np.ndarray:
    return np.load(out / entry["folder"] / "attributions_ig.npy")


def _alone(tmp_path: Path, image: Path, extra=()) -> np.ndarray:
    """The IG attributions of ``image`` explained on its own (the reference for batch runs)."""
    out = tmp_path / f"alone-{image.parent.name}-{image.stem}-{len(list(tmp_path.iterdir()))}"
    assert _explain(out, image, extra=["--no-pictures", *extra]) == 0
    (entry,) = _report(out)["items"]
    return _ig(out, entry)


# --- colliding names ---------------------------------------------------------------------------
def test_same_file_name_in_two_folders_and_non_ascii_names_get_their_own_folders(tmp_path):
    a = _picture(tmp_path / "in" / "a" / "cat.png", 1)
    b = _picture(tmp_path / "in" / "b" / "cat.png", 2)
    accented = _picture(tmp_path / "in" / "c" / "café.png", 3)
    japanese = _picture(tmp_path / "in" / "c" / "猫.png", 4)
    out = tmp_path / "out"
    assert _explain(out, tmp_path / "in", extra=["--no-pictures"]) == 0
    entries = _by_source(out)
    assert sorted(entries) == sorted(map(str, (a, b, accented, japanese)))  # folders searched recursively
    folders = [e["folder"] for e in entries.values()]
    assert len(set(folders)) == 4 and all(f.isascii() for f in folders)
    assert entries[str(a)]["folder"].startswith("cat-") and entries[str(b)]["folder"].startswith("cat-")
    assert entries[str(accented)]["folder"].startswith("cafe-")
    for image in (a, b):  # each folder holds its own image's result, not the other's
        summary = json.loads((out / entries[str(image)]["folder"] / "summary.json").read_text())
        assert summary["item"]["source"] == str(image)
        np.testing.assert_allclose(_ig(out, entries[str(image)]), _alone(tmp_path, image), rtol=1e-4, atol=1e-7)
    assert not np.allclose(_ig(out, entries[str(a)]), _ig(out, entries[str(b)]))


def test_the_same_picture_twice_is_computed_once_and_both_point_at_it(tmp_path):
    first = _picture(tmp_path / "x" / "one.png", 5)
    second = tmp_path / "y" / "copy.png"
    second.parent.mkdir()
    second.write_bytes(first.read_bytes())
    out = tmp_path / "out"
    assert _explain(out, first, second, extra=["--no-pictures"]) == 0
    entries = _by_source(out)
    assert entries[str(second)]["status"] == "duplicate"
    assert entries[str(second)]["folder"] == entries[str(first)]["folder"]


# --- a replaced file ---------------------------------------------------------------------------
def test_a_replaced_file_under_the_same_name_is_recomputed(tmp_path):
    image = _picture(tmp_path / "in" / "photo.png", 6)
    other = _picture(tmp_path / "in" / "other.png", 7)
    out = tmp_path / "out"
    assert _explain(out, image, other, extra=["--no-pictures"]) == 0
    before = _by_source(out)
    _picture(image, 8)  # the user replaces the picture, same name
    assert _explain(out, image, other, extra=["--no-pictures"]) == 0
    after = _by_source(out)
    assert after[str(image)]["status"] == "written" and after[str(image)]["folder"] != before[str(image)]["folder"]
    assert after[str(other)]["status"] == "kept" and after[str(other)]["folder"] == before[str(other)]["folder"]
    np.testing.assert_allclose(_ig(out, after[str(image)]), _alone(tmp_path, image), rtol=1e-4, atol=1e-7)


# --- a second run into the same --out ----------------------------------------------------------
def test_other_settings_into_the_same_out_are_refused_and_overwrite_leaves_nothing_stale(tmp_path, capsys):
    image = _picture(tmp_path / "photo.png", 9)
    out = tmp_path / "out"
    assert _explain(out, image, extra=["--label", "7"]) == 0  # label ≠ top prediction: Figure 6 files
    (entry,) = _report(out)["items"]
    first = out / entry["folder"]
    assert (first / "figure6.png").is_file() and (first / "ig_predicted_paper.png").is_file()
    capsys.readouterr()
    assert _explain(out, image, extra=["--no-pictures"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("igkit: error:") and "--overwrite" in err and "Traceback" not in err
    assert (first / "figure6.png").is_file()  # refused: nothing touched
    assert _explain(out, image, extra=["--no-pictures", "--overwrite"]) == 0
    (entry,) = _report(out)["items"]
    assert entry["status"] == "written"
    assert not list(out.rglob("*.png")) and not list(out.rglob("figure6*"))  # no stale pictures mixed in
    files = sorted(p.name for p in (out / entry["folder"]).iterdir())
    assert files == sorted(json.loads((out / entry["folder"] / "summary.json").read_text())["files"]
                           + ["summary.json"])
    assert _explain(out, image, extra=["--no-pictures"]) == 0  # same settings again: kept, not redone
    assert _report(out)["items"][0]["status"] == "kept"


# --- interrupts --------------------------------------------------------------------------------
def _six(tmp_path: Path) -> list[Path]:
    return [_picture(tmp_path / "in" / f"img{i}.png", 20 + i) for i in range(6)]


def test_ctrl_c_in_a_forward_keeps_finished_images_and_a_rerun_computes_only_the_rest(tmp_path, monkeypatch,
                                                                                       capsys):
    import igkit.plugins.vision.attribution as attribution
    import igkit.plugins.vision.outputs as outputs
    from igkit.plugins.vision.models import VisionModel

    images = _six(tmp_path)
    out = tmp_path / "out"
    state = {"written": 0, "armed": False}
    real_write, real_logits = outputs.write_image, VisionModel.logits

    def write_then_arm(exp, folder, *, pictures=True):
        files = real_write(exp, folder, pictures=pictures)
        state["written"] += 1
        state["armed"] = state["written"] == 4  # the first group (4 images) is on disk
        return files

    def logits(self, pixels):
        if state["armed"]:
            raise KeyboardInterrupt
        return real_logits(self, pixels)

    monkeypatch.setattr(outputs, "write_image", write_then_arm)
    monkeypatch.setattr(VisionModel, "logits", logits)
    assert _explain(out, *images, extra=["--no-pictures"]) == 130
    assert "interrupted" in capsys.readouterr().err
    report = _report(out)
    assert report["status"] == "interrupted" and report["counts"]["written"] == 4
    done = {e["source"] for e in report["items"]}
    assert done == set(map(str, images[:4]))
    assert not list(out.glob(".partial-*"))

    monkeypatch.setattr(VisionModel, "logits", real_logits)
    prepared = []
    real_prepare = attribution.prepare_image
    monkeypatch.setattr(attribution, "prepare_image",
                        lambda model, value, options: prepared.append(value) or real_prepare(model, value, options))
    assert _explain(out, *images, extra=["--no-pictures"]) == 0
    report = _report(out)
    assert report["status"] == "complete"
    assert report["counts"] == {"written": 2, "kept": 4, "duplicate": 0, "skipped": 0}
    assert prepared == list(map(str, images[4:]))  # only the rest was computed
    entries = _by_source(out)
    np.testing.assert_allclose(_ig(out, entries[str(images[5])]), _alone(tmp_path, images[5]), rtol=1e-4, atol=1e-7)


def test_ctrl_c_while_writing_leaves_no_partial_folder(tmp_path, monkeypatch):
    import igkit.plugins.vision.outputs as outputs

    images = _six(tmp_path)[:3]
    out = tmp_path / "out"
    real_write = outputs.write_image
    calls = []

    def interrupted_second(exp, folder, *, pictures=True):
        calls.append(folder)
        files = real_write(exp, folder, pictures=pictures)
        if len(calls) == 2:
            raise KeyboardInterrupt  # half-way through the second image's files
        return files

    monkeypatch.setattr(outputs, "write_image", interrupted_second)
    assert _explain(out, *images) == 130
    report = _report(out)
    assert report["status"] == "interrupted"
    assert [e["source"] for e in report["items"]] == [str(images[0])]
    item_folders = [p for p in out.iterdir() if p.is_dir()]
    assert [p.name for p in item_folders] == [report["items"][0]["folder"]]  # no half-written folder
    monkeypatch.setattr(outputs, "write_image", real_write)
    assert _explain(out, *images) == 0
    assert _report(out)["counts"] == {"written": 2, "kept": 1, "duplicate": 0, "skipped": 0}
    for entry in _report(out)["items"]:
        assert (out / entry["folder"] / "ig_paper.png").is_file()
    assert (out / "saturation_all.csv").read_text().count("\n") == 1 + 3 * 2  # header + 3 images × 2 alphas


# --- bad items among good ones -----------------------------------------------------------------
def test_bad_files_are_skipped_with_reasons_and_the_others_are_intact(tmp_path, capsys):
    folder = tmp_path / "in"
    good = [_picture(folder / f"good{i}.png", 30 + i) for i in range(2)]
    (folder / "empty.png").write_bytes(b"")
    (folder / "junk.jpg").write_bytes(b"this is not an image")
    whole = _picture(tmp_path / "whole.jpg", 40)
    (folder / "cut.jpg").write_bytes(whole.read_bytes()[:200])
    notes = folder / "notes.txt"
    notes.write_text("not an image")  # inside a folder: ignored; named explicitly: reported
    out = tmp_path / "out"
    code = _explain(out, folder, notes, tmp_path / "absent.png", extra=["--no-pictures"])
    assert code == 1
    entries = _by_source(out)
    reasons = {Path(s).name: e.get("reason", "") for s, e in entries.items() if e["status"] == "skipped"}
    assert set(reasons) == {"empty.png", "junk.jpg", "cut.jpg", "notes.txt", "absent.png"}
    assert "empty (0 bytes)" in reasons["empty.png"] and "no such file" in reasons["absent.png"]
    assert "not an image Pillow can read" in reasons["junk.jpg"] and "corrupt" in reasons["cut.jpg"]
    assert all(e["kind"] == "input" for e in entries.values() if e["status"] == "skipped")
    err = capsys.readouterr().err
    assert err.count("skipped ") == 5 and "Traceback" not in err
    for image in good:
        np.testing.assert_allclose(_ig(out, entries[str(image)]), _alone(tmp_path, image), rtol=1e-4, atol=1e-7)


# --- input hygiene: the box table of `evaluate` -------------------------------------------------
def test_box_csv_with_bom_and_crlf_reads_the_same_boxes(tmp_path):
    from igkit.plugins.vision.boxes import read_box_csv

    text = "image,xmin,ymin,xmax,ymax\r\na.png,1,2,3,4\r\nb.png,5,6,7,8\r\n"
    (tmp_path / "plain.csv").write_text(text.replace("\r\n", "\n"), encoding="utf-8")
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert read_box_csv(tmp_path / "bom.csv") == read_box_csv(tmp_path / "plain.csv") == {
        "a.png": [(1.0, 2.0, 3.0, 4.0)], "b.png": [(5.0, 6.0, 7.0, 8.0)]}


def test_non_utf8_box_csv_is_one_clear_error_naming_file_and_line(tmp_path, capsys):
    image = _picture(tmp_path / "in" / "a.png", 50)
    boxes = tmp_path / "boxes.csv"
    boxes.write_bytes("image,xmin,ymin,xmax,ymax\na.png,1,2,3,4\nb\xe9.png,1,2,3,4\n".encode("latin-1"))
    code = main(["vision", "evaluate", str(image), "--out", str(tmp_path / "eval"), "--boxes", str(boxes),
                 "--ablate-pixels", "100", "--ablate-per-step", "50", "--steps", "4", "--model", "squeezenet1_1",
                 "--weights", "random", "--size", "32", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("igkit: error:") and f"{boxes}, line 3" in err and "UTF-8" in err
    assert "Traceback" not in err


# --- exit codes and user errors ----------------------------------------------------------------
@pytest.mark.parametrize("extra, message", [
    (["--device", "tpu9"], "unknown --device 'tpu9'"),
    (["--label", "reflex camra"], "closest class names"),
    (["--layers", "layer9"], "no submodule 'layer9'"),
    (["--clip", "50", "10"], "--clip needs"),
])
def test_user_errors_end_in_one_line_and_exit_code_2(tmp_path, capsys, extra, message):
    image = _picture(tmp_path / "a.png", 60)
    assert _explain(tmp_path / "out", image, extra=extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("igkit: error:") and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before any output


def test_out_that_is_a_file_and_unknown_models_are_user_errors(tmp_path, capsys):
    image = _picture(tmp_path / "a.png", 61)
    (tmp_path / "taken").write_text("a file")
    assert _explain(tmp_path / "taken", image) == 2
    assert capsys.readouterr().err.startswith("igkit: error: --out")
    assert main(["vision", "explain", str(image), "--out", str(tmp_path / "o"), "--model", "resnet5",
                 "--weights", "random", "--quiet"]) == 2
    assert "did you mean resnet50" in capsys.readouterr().err
    assert _explain(tmp_path / "none", extra=["--no-pictures"]) == 2
    assert capsys.readouterr().err.startswith("igkit: error: no vision items given")


def test_the_generic_route_takes_weights_and_writes_the_same_files(tmp_path):
    image = _picture(tmp_path / "a.png", 62)
    ours, generic = tmp_path / "ours", tmp_path / "generic"
    assert _explain(ours, image, extra=["--no-pictures"]) == 0
    assert main(["explain", "--domain", "vision", str(image), "--out", str(generic), *FAST, "--no-pictures"]) == 0
    (a,), (b,) = _report(ours)["items"], _report(generic)["items"]
    assert a["folder"] == b["folder"]
    assert sorted(p.name for p in (ours / a["folder"]).iterdir()) == sorted(
        p.name for p in (generic / b["folder"]).iterdir())
    np.testing.assert_array_equal(_ig(ours, a), _ig(generic, b))
    assert json.loads((ours / "run.json").read_text())["run_id"] == json.loads(
        (generic / "run.json").read_text())["run_id"]
