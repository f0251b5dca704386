"""``verify report``: render run JSON files as a Markdown or HTML report with figures.

Figures are PNG (200 dpi) with PDF and SVG beside them; the HTML report embeds its PNGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import click

from robustprop.verify.cli.version import tool_version
from robustprop.verify.formats.output_file import is_stdout
from robustprop.verify.formats.text import printable
from robustprop.verify.report.junit import write_junit_runs
from robustprop.verify.report.load import load_runs
from robustprop.verify.report.model import LabelBy
from robustprop.verify.report.render import (
    check_output_path,
    check_report_path,
    figures_folder,
    write_report,
)

__all__ = ["command"]


@click.command("report")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("report.md"),
    show_default=True,
    help="Report file: .md (GitHub Markdown) or .html (self-contained: figures embedded); "
    "figures (PNG, PDF, SVG) go to <stem>_files/ beside it "
    "(a folder of that name not made by verify report is refused, never replaced).",
)
@click.option(
    "--label-by",
    type=click.Choice(get_args(LabelBy)),
    default="network",
    show_default=True,
    help="Name each network by its ONNX path, or by the JSON file it came from.",
)
@click.option(
    "--junit",
    "junit_out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the runs as JUnit XML (one test case per point and property); "
    "- for standard output.",
)
def command(
    inputs: tuple[Path, ...], output: Path, label_by: LabelBy, junit_out: Path | None
) -> None:
    """Compare runs of `verify run --json` (run or ε-sweep documents, several files).

    One section per property: a table with one row per network and ε (satisfaction
    interval, holds / violated / unknown, security, accuracy, and the gaps between them),
    a figure (metric vs ε for sweeps, bars per network otherwise) and notes on the points
    refuted by the verifier but missed by PGD. A malformed input is an error (exit 2)
    and no report is written.
    """
    check_report_path(output)  # a bad suffix, a folder not ours: before reading anything
    if junit_out is not None:  # checked before the report is written: all or nothing
        check_output_path("--junit", junit_out)
    runs = load_runs(list(inputs), label_by)
    figures = write_report(output, runs, list(inputs), tool_version())
    runs_text = f"{len(runs)} run" + ("" if len(runs) == 1 else "s")
    figures_text = f"{len(figures)} figure" + ("" if len(figures) == 1 else "s")
    folder = figures_folder(output)
    to_stderr = junit_out is not None and is_stdout(junit_out)  # stdout carries the XML
    click.echo(
        f"wrote {printable(output)} ({runs_text}, {figures_text} in {printable(folder.name)}/)",
        err=to_stderr,
    )
    if junit_out is not None:
        write_junit_runs(junit_out, runs)
        if not to_stderr:
            click.echo(f"wrote {printable(junit_out)}")
