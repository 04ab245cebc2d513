"""The multi-fragment study script: its table step rebuilds the README's table from the stored rows."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "docs" / "molecules" / "study"
SCRIPT = ROOT / "scripts" / "molecules_study" / "run_study.py"


def test_the_table_step_rebuilds_the_study_table_the_readme_shows(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--table", str(STUDY), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rebuilt = (tmp_path / "study.md").read_text()
    assert rebuilt == (STUDY / "study.md").read_text()
    readme = (ROOT / "plugins" / "molecules" / "README.md").read_text()
    rows = rebuilt.splitlines()
    assert len(rows) > 30 and all(row in readme for row in rows)
    assert "run_study.py --work W --limit 100" in readme        # the command that wrote the rows
