"""``negosim serve``: the classroom in the browser (the ``serve`` extra)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ...errors import UsageError
from ..util import add_command


def cmd_serve(args: argparse.Namespace) -> int:
    """``negosim serve``: start the classroom server; print the students' URL and the
    instructor's link."""
    from ...extras import require

    require("serve")
    from ...web.server import serve
    from ...web.store import StoreError, default_db_path

    scenarios = Path(args.scenarios)
    if not scenarios.is_dir():
        raise UsageError(f"--scenarios {args.scenarios}: not a directory")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: a port is a number from 1 to 65535")
    db = Path(args.db) if args.db else default_db_path()
    if db.is_dir():
        raise UsageError(f"--db {db}: is a directory; give a file name")
    try:
        serve(args.host, args.port, db, scenarios.resolve(), workers=args.workers)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        pass
    return 0


def register(sub: Any) -> None:
    """Add the ``serve`` subcommand to ``sub``."""
    sv = add_command(
        sub,
        "serve",
        "A class in the browser: predict, simulate, reveal, play live.",
        """  negosim serve                                  # http://127.0.0.1:8765
  negosim serve --host 0.0.0.0 --db class.sqlite3  # a class network (prints a warning)""",
        cmd_serve,
    )
    sv.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    sv.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    sv.add_argument(
        "--db",
        metavar="PATH",
        help="SQLite file for classes, predictions, games and results "
        "(default: ~/.local/share/negosim/classroom.sqlite3)",
    )
    sv.add_argument(
        "--scenarios",
        metavar="DIR",
        default="scenarios",
        help="directory of the case library (default: ./scenarios)",
    )
    sv.add_argument(
        "--workers", type=int, default=2, help="worker processes for simulations (default: 2)"
    )
