"""The command line: a thin layer of argument parsing over the library."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
