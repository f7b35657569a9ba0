"""Attacks run as a hostile user would (issue 9): the CLI in a subprocess, limits checked."""
