"""The discrete-event engine: one replication of a compiled scenario at a time."""
