"""The ``squall`` command line; every command but ``up`` is a client of the admin API."""

from squall.cli.commands import app, main

__all__ = ["app", "main"]
