"""`verify vnnlib`: not yet implemented."""

from __future__ import annotations

import sys

import click


@click.command("vnnlib", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(args: tuple[str, ...]) -> None:
    """Not yet implemented (exit code 3)."""
    click.echo("verify vnnlib: not yet implemented", err=True)
    sys.exit(3)
