"""Reading scenario files: YAML with source positions, the pydantic schema, units, overrides.

The first stage of the pipeline (scenario → compiler → engine → runs → output).
Nothing here knows about compiled tables or simulation.
"""
