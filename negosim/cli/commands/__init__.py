"""The subcommands of ``negosim``, one module per group; each has ``register(sub)``."""
