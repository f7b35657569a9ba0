"""What keeps the classroom safe on a shared network: secrets, CSRF, caps.

* Instructor pages need a secret: the server's instructor key (printed by
  ``negosim serve``) for creating classes and uploading cases, or a class's own
  instructor secret for its dashboard. Either is given once in the link and
  then kept in an HttpOnly, SameSite=Strict cookie.
* Every form post carries the browser's CSRF token (a random cookie, repeated
  in a hidden field); a post whose token does not match, or whose ``Origin``
  is another site, is refused.
* Caps: runs per request (:data:`MAX_RUNS`), simulations per browser per ten
  minutes (:data:`SIMULATIONS_PER_WINDOW`), and form posts per browser per
  minute (:data:`POSTS_PER_MINUTE`); each refusal says which cap and when to
  try again.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

CSRF_COOKIE = "negosim_csrf"
MAX_RUNS = 20_000
"""Runs of one simulation or comparison requested from the browser, at most."""
MIN_RUNS = 100
SIMULATIONS_PER_WINDOW = 20
SIMULATION_WINDOW_S = 600
POSTS_PER_MINUTE = 120
MAX_NAME = 40
"""Characters of a display name or a class name."""


def csrf_token(request: Request) -> str:
    """The browser's CSRF token (a new one if it has none yet; the page sets the cookie)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) < 20 or len(token) > 100:
        token = getattr(request.state, "new_csrf", "") or secrets.token_urlsafe(24)
        request.state.new_csrf = token
    return token


def csrf_ok(request: Request, sent: str | None) -> bool:
    """Whether a form post is from a page of this server."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not sent or not hmac.compare_digest(cookie, sent):
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            return False
    return True


def who(request: Request) -> str:
    """Whom a cap counts: the browser (its CSRF cookie), else its address."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if cookie:
        return "b:" + cookie[:32]
    return "a:" + (request.client.host if request.client else "?")


def clean_name(text: str | None, limit: int = MAX_NAME) -> str:
    """A display name as typed, trimmed, without control characters, at most ``limit`` chars.

    It is stored as typed (``<script>`` included): pages escape it, the CSV
    export neutralises a leading formula character.
    """
    text = "".join(ch for ch in (text or "") if ch.isprintable()).strip()
    return text[:limit]
