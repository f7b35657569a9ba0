"""From a validated scenario to the immutable tables the engine runs on.

Expressions, distributions, value resolution, the protocol's next-state table
and the parameter table are built once per scenario here; :func:`loader.load`
is the entry point (read, validate, compile); :mod:`.bind` gives a compiled
scenario other parameter values without compiling it again.
"""
