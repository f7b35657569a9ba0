"""The package's shape: imports point one way along the pipeline.

scenario → compiler → engine → runs → output → classroom → cli, with
``errors`` at the bottom. The contract lives in ``pyproject.toml``
(``[tool.importlinter]``); this test runs import-linter on it, so a lower
layer that starts importing an upper one fails the suite, not just CI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LINT = (
    "from importlinter.cli import lint_imports; "
    "raise SystemExit(lint_imports(config_filename='pyproject.toml', no_cache=True))"
)


def test_imports_follow_the_pipeline() -> None:
    # In a subprocess started in the repository, so the tree under test is the
    # one analysed (import-linter finds the root package by importing it).
    done = subprocess.run([sys.executable, "-c", LINT], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout
