"""Every Python code block in every README runs as written (in a fresh process, in a temporary
folder, so no block can lean on another or leave files in the checkout)."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
READMES = sorted([REPO / "README.md", *REPO.glob("plugins/*/README.md"), *REPO.glob("core/**/README.md"),
                  *REPO.glob("bench/README.md")])
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
#: words in a block that mean it needs an optional extra: (module it imports, the extra)
NEEDS = {"torch_geometric": ("torch_geometric", "pyg"), "chemprop": ("chemprop", "chemprop"),
         "transformers": ("transformers", "transformers"), "ptb-gpt2": ("transformers", "transformers"),
         "causal_lm": ("transformers", "transformers"), "parquet": ("pyarrow", "parquet"),
         "pandas": ("pandas", "parquet")}


def _blocks() -> list[tuple[str, str]]:
    found = []
    for readme in READMES:
        for k, match in enumerate(BLOCK.finditer(readme.read_text()), start=1):
            found.append((f"{readme.relative_to(REPO)}#{k}", match.group(1)))
    return found


@pytest.mark.parametrize("name, code", _blocks(), ids=[name for name, _ in _blocks()])
def test_readme_block_runs_as_written(name, code, tmp_path):
    for word, (module, extra) in NEEDS.items():
        if word in code and importlib.util.find_spec(module) is None:
            pytest.skip(f"{name} needs the {extra} extra: pip install -e \".[{extra}]\"")
    env = {**os.environ, "IGKIT_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, f"{name} failed:\n{done.stderr[-3000:]}"


def test_every_readme_has_been_searched():
    assert any(name.startswith("README.md#") for name, _ in _blocks())
