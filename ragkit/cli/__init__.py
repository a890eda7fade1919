"""The `ragkit` command line: a thin typer layer over ragkit.api."""

from ragkit.cli.app import app, main

__all__ = ["app", "main"]
