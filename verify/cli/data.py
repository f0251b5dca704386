"""`verify data fetch`: download a named data set from its official source into the cache."""

from __future__ import annotations

from pathlib import Path

import click

from robustprop.lazy import load
from robustprop.training.fetch import DATA_CACHE_ENV, SOURCES, Progress, data_cache_dir, fetch
from robustprop.verify.cli.options import FOLDER, progress_option, show_progress

__all__ = ["command"]


def _bar(name: str, total: int | None) -> Progress:
    bar: Progress = load("tqdm").tqdm(
        total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, leave=False
    )
    return bar


@click.group("data")
def command() -> None:
    """Data sets: download them into the data cache, where training and verify look for them."""


@command.command("fetch")
@click.argument("name", type=click.Choice(sorted(SOURCES)))
@click.option(
    "--cache-dir",
    type=FOLDER,
    default=None,
    help=f"Where to store the data (default: ${DATA_CACHE_ENV} or ~/.cache/robustprop/data).",
)
@progress_option("Show a progress bar on stderr (default: only when stderr is a terminal).")
def fetch_command(name: str, cache_dir: Path | None, progress: bool | None) -> None:
    """Download data set NAME from its official source, check every file against its pinned
    checksum and store it where the loaders read it (exit 2 on a checksum mismatch: nothing is
    stored). Files already present with the right checksum are not downloaded again."""
    show = show_progress(progress)
    result = fetch(SOURCES[name], data_cache_dir(cache_dir), _bar if show else None)
    if result.downloaded:
        click.echo(f"downloaded {', '.join(result.downloaded)}")
    if result.built:
        click.echo(f"built {', '.join(result.built)}")
    if not result.downloaded and not result.built:
        click.echo(f"already present: {', '.join(result.present)}")
    click.echo(f"{name} is in {result.folder}")
