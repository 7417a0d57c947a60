"""Subcommands of `python -m harness`: each module defines `register(subparsers)`."""
