"""Every reader of user files fed random and adversarial bytes (issue 22): whatever the bytes,
the only exceptions that come out are igkit's own (:class:`~igkit.errors.IgkitError`), and a
reader that reads rows or items returns, for every row, either the row or the reason it is
refused. Hypothesis draws the inputs; the example budget keeps the whole module to a few
seconds (no deadline flakiness: each example gets 5 s, a hang would be far longer)."""
from __future__ import annotations

import functools
import importlib.util
import json
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from igkit.errors import IgkitError  # noqa: E402
from igkit.io.records import BadRow, read_json, read_lines, read_table, read_text  # noqa: E402

FUZZ = settings(max_examples=60, deadline=timedelta(seconds=5), database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
#: byte soups that broke readers before, or that readers must survive: control characters,
#: unbalanced quotes, NUL bytes, a BOM before garbage, CR-only lines, overlong cells, non-UTF-8
ADVERSARIAL = [b"", b"\xef\xbb\xbf", b"\x1b[2J\x07", b'"' * 999, b'id,smiles\nm1,"CCO\nm2,CCN\n',
               b"smiles\x00,id\nC\x00C,1\n", b"a,a\n1,2\n", b"\r\r\r,\r", b"\xff\xfe\x00a",
               b"smiles\n" + b"C" * 140_000 + b"\n", b"smiles\n" + b'"' + b"C\n" * 3000,
               "smiles\nC\u202eO\n".encode(), b"$$$$\n$$$$\nM  END\n", b"\t\t\t\n\t"]
text_bytes = st.one_of(st.binary(max_size=2000),
                       st.text(alphabet=st.characters(codec="utf-8"), max_size=500).map(str.encode),
                       st.lists(st.sampled_from([b"smiles", b"id", b",", b'"', b"\n", b"\r\n", b"C", b"c1ccccc1",
                                                 b"\t", b"\x00", b"\x1b", b"$$$$", b"M  END", b" "]),
                                max_size=80).map(b"".join))


@pytest.fixture(scope="module")
def folder():
    path = Path(tempfile.mkdtemp(prefix="igkit-fuzz-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def written(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def only_igkit_errors(read) -> list:
    """Everything ``read()`` yields, or [] when it stops with an igkit error (any other error fails)."""
    try:
        return list(read())
    except IgkitError:
        return []


def adversarial(**others):
    """Every :data:`ADVERSARIAL` input as an explicit example (with ``others`` for the other arguments)."""
    def add(test):
        for data in ADVERSARIAL:
            test = example(data=data, **others)(test)
        return test
    return add


# ----------------------------------------------------------------------------------------- tables
@FUZZ
@given(data=text_bytes)
@adversarial()
def test_table_reader(folder, data):
    path = written(folder, "t.csv", data)
    for line, row in only_igkit_errors(lambda: read_table(path, bad_rows="yield")[1]):
        assert isinstance(line, int) and line >= 2
        assert isinstance(row, BadRow) or all(isinstance(v, str) for v in row.values())


@FUZZ
@given(data=text_bytes)
@adversarial()
@example(data=b"a\r\nb\rc\n\n")
@example(data=b"line\n" * 13_000 + b"\xc3\xa9\xff after")  # a bad byte past the first 64 KiB read
@example(data=b"x" * 65_535 + b"\xc3\xa9\r\n\xe2\x82")  # a character split where a read stops; one cut off
def test_streamed_lines_are_the_lines_of_the_whole_text(folder, data):
    """:func:`read_lines` streams, yet gives exactly the lines (and the errors, with their line
    and byte) of the whole file decoded at once."""
    path = written(folder, "lines.txt", data)
    try:
        whole = list(enumerate(read_text(path).split("\n"), start=1))
    except IgkitError as exc:
        with pytest.raises(IgkitError) as streamed:
            read_lines(path)
        assert str(streamed.value) == str(exc)
        return
    assert list(read_lines(path)) == whole


@FUZZ
@given(data=text_bytes)
@adversarial()
def test_json_reader(folder, data):
    only_igkit_errors(lambda: [read_json(written(folder, "c.json", data))])


# -------------------------------------------------------------------------------------- molecules
@FUZZ
@given(data=text_bytes, suffix=st.sampled_from([".csv", ".smi", ".sdf", ".tsv"]))
@adversarial(suffix=".csv")
def test_molecule_readers(folder, data, suffix):
    from igkit.plugins.molecules.readers import MoleculeInput, Problem, parse_input, read_inputs

    path = written(folder, f"mols{suffix}", data)
    for entry in only_igkit_errors(lambda: read_inputs(path, id_col=None)):
        assert isinstance(entry, (MoleculeInput, Problem))
        if isinstance(entry, MoleculeInput):
            only_igkit_errors(lambda: [parse_input(entry)])


# ------------------------------------------------------------------------------------------- text
@FUZZ
@given(data=text_bytes, every_position=st.booleans())
@adversarial(every_position=False)
def test_text_context_readers(folder, data, every_position):
    from igkit.domain import BadItem, Item
    from igkit.plugins.text.contexts import parse_context, read_contexts
    from igkit.plugins.text.vocab import Vocabulary

    vocab = Vocabulary(["<unk>", "<eos>", "the", "stock"])
    path = written(folder, "contexts.txt", data)
    items = only_igkit_errors(lambda: read_contexts([path], every_position=every_position, window=3))
    for item in items:
        assert isinstance(item, (Item, BadItem))
        if isinstance(item, Item):
            only_igkit_errors(lambda: [parse_context(item.value, vocab)])


# ----------------------------------------------------------------------------------------- images
def _image_bytes() -> list[bytes]:
    import io

    from PIL import Image

    found = []
    for fmt, mode in (("PNG", "RGB"), ("GIF", "P"), ("TIFF", "F"), ("BMP", "RGB"), ("JPEG", "L")):
        buffer = io.BytesIO()
        Image.new(mode, (6, 5)).save(buffer, fmt)
        found.append(buffer.getvalue())
    return found


@st.composite
def damaged_images(draw) -> bytes:
    """A real small image file with a few bytes overwritten, cut, or its size fields enlarged."""
    data = bytearray(draw(st.sampled_from(_image_bytes())))
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[:draw(st.integers(0, len(data)))])


@FUZZ
@given(data=st.one_of(st.binary(max_size=3000), damaged_images()))
@adversarial()
def test_image_reader(folder, data):
    from igkit.plugins.vision.images import read_image

    only_igkit_errors(lambda: [read_image(written(folder, "picture.png", data))])


# ------------------------------------------------------------------------------- checkpoint configs
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.just(10**400) | st.floats()
                           | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4),
                           max_leaves=12)


@st.composite
def damaged_configs(draw, original: dict) -> dict:
    """The checkpoint's own JSON with one to three entries (at any depth) replaced or removed."""
    document = json.loads(json.dumps(original))
    for _ in range(draw(st.integers(1, 3))):
        node = document
        while True:
            keys = list(node) if isinstance(node, dict) else []
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            if isinstance(node[key], dict) and draw(st.booleans()):
                node = node[key]
                continue
            if draw(st.integers(0, 4)) == 0:
                del node[key]
            else:
                node[key] = draw(json_values)
            break
    return document


def _checkpoint(folder: Path, source: Path, name: str) -> Path:
    for suffix in (".safetensors", ".json"):
        shutil.copy(source.with_suffix(suffix), folder / f"{name}{suffix}")
    return folder / name


@pytest.fixture(scope="module")
def molecule_config(folder):
    from igkit.plugins.molecules.checkpoint import DEFAULT_MODEL

    path = _checkpoint(folder, DEFAULT_MODEL, "mol")
    return path, json.loads(path.with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def text_config(folder):
    from text_models import save_tiny_language_model

    path = save_tiny_language_model(folder / "lm")
    return path, json.loads(path.with_suffix(".json").read_text())


@FUZZ
@given(data=st.data())
def test_molecule_checkpoint_config_reader(molecule_config, data):
    from igkit.plugins.molecules.checkpoint import load_model

    path, original = molecule_config
    document = data.draw(st.one_of(damaged_configs(original), json_values))
    path.with_suffix(".json").write_text(json.dumps(document))
    only_igkit_errors(lambda: [load_model(path)])


@FUZZ
@given(data=st.data())
def test_text_checkpoint_config_reader(text_config, data):
    from igkit.plugins.text.checkpoint import load_language_model

    path, original = text_config
    document = data.draw(st.one_of(damaged_configs(original), json_values))
    path.with_suffix(".json").write_text(json.dumps(document))
    only_igkit_errors(lambda: [load_language_model(path)])


# ------------------------------------------------------------------------------ terminal escaping
@FUZZ
@given(text=st.text(max_size=300), limit=st.integers(1, 120))
@example(text="\x1b]0;title\x07\u202e\u2028\x00\ud800", limit=120)
def test_printable_output_is_always_safe_and_short(text, limit):
    from igkit.outputs.printable import printable

    shown = printable(text, limit)
    assert shown.isprintable()  # no control, format or separator character reaches a terminal
    assert len(shown) <= 10 * limit + 30  # every escape is at most 10 characters; the note is short
    if text.isprintable() and len(text) <= limit:
        assert shown == text


# ---------------------------------------------------------------------------------------- Parquet
PARQUET = all(importlib.util.find_spec(name) is not None for name in ("pyarrow", "igkit.io.parquet_input"))


@functools.lru_cache(maxsize=1)
def _parquet_bytes() -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({"smiles": ["CCO", "c1ccccc1"] * 20, "id": [str(k) for k in range(40)]}), buffer)
    return buffer.getvalue()


@st.composite
def damaged_parquet(draw) -> bytes:
    """A small Parquet file of molecules with a few bytes of its data pages overwritten (the
    footer intact, so the damage is met while rows are read), or its end cut."""
    data = bytearray(_parquet_bytes())
    if draw(st.booleans()):
        return bytes(data[:draw(st.integers(0, len(data)))])
    pages_end = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(4, pages_end - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@pytest.mark.skipif(not PARQUET, reason="Parquet input needs pyarrow (the parquet extra)")
@given(data=st.one_of(damaged_parquet(), st.binary(max_size=500)))
def test_parquet_molecule_reader(folder, data):
    from igkit.plugins.molecules.readers import FILE_KINDS, MoleculeInput, Problem, read_inputs

    if ".parquet" not in FILE_KINDS:
        pytest.skip("this igkit reads no Parquet molecules")
    path = written(folder, "mols.parquet", data)
    for entry in only_igkit_errors(lambda: read_inputs(path, id_col="id")):
        assert isinstance(entry, (MoleculeInput, Problem))
