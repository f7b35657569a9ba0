"""Refresh the ``--help`` blocks of docs/cli.md from the program itself.

    python scripts/cli_docs.py

The first ```text block of the page is ``negosim --help``; in each section
headed ``## `negosim COMMAND` `` the first ```text block is that command's
``--help``, at 80 columns. tests/test_docs.py checks they are current.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def help_text(*argv: str) -> str:
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    cmd = [sys.executable, "-m", "negosim.cli.main", *argv, "--help"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout


def refresh(text: str) -> str:
    def replace_first_block(section: str, body: str) -> str:
        start = section.index("```text\n") + len("```text\n")
        end = section.index("```", start)
        return section[:start] + body + section[end:]

    parts = re.split(r"(?m)^(?=## )", text)
    parts[0] = replace_first_block(parts[0], help_text())
    for i, part in enumerate(parts[1:], start=1):
        m = re.match(r"## `negosim ([\w-]+)`", part)
        if m and "```text\n" in part:
            parts[i] = replace_first_block(part, help_text(m.group(1)))
    return "".join(parts)


if __name__ == "__main__":
    DOC.write_text(refresh(DOC.read_text(encoding="utf-8")), encoding="utf-8")
