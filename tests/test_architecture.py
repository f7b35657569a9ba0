"""The package's shape: imports point one way along the pipeline.

scenario → compiler → engine → runs → output → classroom → cli, with
``errors`` at the bottom. The contract lives in ``pyproject.toml``
(``[tool.importlinter]``); this test runs import-linter on it, so a lower
layer that starts importing an upper one fails the suite, not just CI.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_imports_follow_the_pipeline() -> None:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("import-linter is part of the test extra: pip install -e '.[test]'")
    done = subprocess.run(
        [exe, "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout
