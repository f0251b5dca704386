"""`verify report`: write the Markdown or HTML report of checked runs, with its figures.

One section per property (name and parameters except ε), one table row per (network, ε) so
networks sit side by side, a figure per section (metric vs ε when the section has several ε,
else bars per network), and per-run notes (points refuted by the verifier but missed by PGD,
unknowns, invariant breaches). The runs come from :mod:`robustprop.verify.report.load`, the
Markdown or HTML text from :mod:`robustprop.verify.report.markdown`, the figures from
:mod:`robustprop.verify.report.plots`. The report and its ``<stem>_files/`` folder are built
in a temporary folder and renamed into place.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from robustprop.properties.errors import InputError
from robustprop.verify.report.markdown import html, markdown
from robustprop.verify.report.model import Figure, RunRecord, sections
from robustprop.verify.report.plots import section_figure

log = logging.getLogger(__name__)

__all__ = ["check_output_path", "report_format", "write_report"]


def report_format(path: Path) -> Literal["markdown", "html"]:
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        return "markdown"
    if suffix in (".html", ".htm"):
        return "html"
    raise InputError(f"{path}: the report must end in .md or .html, got {suffix or 'no suffix'!r}")


def check_output_path(flag: str, path: Path) -> None:
    """Refuse an output path that cannot become a file: a folder, or one below a file."""
    if path.is_dir():
        raise InputError(f"{flag} {path}: is a directory, expected a file name")
    folder = next((p for p in path.parents if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise InputError(f"{flag} {path}: {folder} is a file, not a folder")


def write_report(
    out: Path,
    runs: Sequence[RunRecord],
    inputs: Sequence[Path],
    version: str,
) -> list[Figure]:
    """Write the report at ``out`` (Markdown or HTML by suffix) and its PNG figures.

    Figures go to ``<stem>_files/`` beside ``out`` (replacing an earlier one). Everything is
    built in a temporary folder next to ``out`` and renamed into place, so a failure leaves
    no partial report.
    """
    fmt = report_format(out)
    check_output_path("-o", out)
    files_name = f"{out.stem}_files"
    final_files = out.parent / files_name
    if final_files.exists() and not final_files.is_dir():
        raise InputError(f"{final_files}: exists and is not a folder; the figures go there")
    groups = sections(runs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    except OSError as err:
        raise InputError(f"-o {out}: cannot write ({err.strerror or err})") from err
    try:
        staging = tmp / files_name
        staging.mkdir()
        figures = [section_figure(s, i + 1, staging, files_name) for i, s in enumerate(groups)]
        if fmt == "markdown":
            text = markdown(groups, figures, inputs, version)
        else:
            text = html(groups, figures, inputs, version)
        (tmp / out.name).write_text(text, encoding="utf-8")
        previous = tmp / "previous"
        if final_files.exists():
            final_files.rename(previous)
        try:
            staging.rename(final_files)
        except BaseException:
            if previous.exists():
                previous.rename(final_files)
            raise
        os.replace(tmp / out.name, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote %s with %d figures in %s", out, len(figures), final_files)
    return figures
