"""``negosim serve``: start the classroom server with uvicorn and say where it is."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import TextIO


def is_local(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def announce(host: str, port: int, key: str, db: Path, scenarios: Path, out: TextIO) -> None:
    """Print the students' address, the instructor's link and where things are kept."""
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "THIS-MACHINE'S-ADDRESS"
    base = f"http://{shown}:{port}"
    out.write(
        f"negosim classroom on {base}\n"
        f"  students open:    {base}/\n"
        f"  instructor link:  {base}/teach?key={key}\n"
        f"  (keep the instructor link to yourself: it creates classes and uploads cases)\n"
        f"  database:         {db}\n"
        f"  scenarios:        {scenarios}\n"
    )
    if not is_local(host):
        out.write(
            f"warning: listening on {host}, beyond this machine: anyone on the network can "
            "open the student pages. Use it on a class network you trust; the instructor "
            "pages need the link above.\n"
        )
    out.flush()


def serve(host: str, port: int, db: Path, scenarios: Path, workers: int = 2,
          out: TextIO = sys.stdout) -> None:  # fmt: skip
    """Run the server until interrupted (Ctrl-C)."""
    import uvicorn

    from .app import Settings, build_app

    app = build_app(Settings(db=db, scenarios=scenarios, workers=workers))
    announce(host, port, app.state.web.key, db, scenarios, out)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
