"""The classroom in the browser (``negosim serve``; needs the ``serve`` extra).

:mod:`.app` builds the ASGI application, :mod:`.server` runs it with uvicorn;
:mod:`.store` keeps everything in SQLite, :mod:`.cases` offers the scenario
library, :mod:`.jobs` runs simulations on a worker pool, :mod:`.games` replays
played games, :mod:`.security` holds the secrets, CSRF and caps.
"""
