"""`verify report`: write the Markdown or HTML report of checked runs, with its figures.

One section per property (name and parameters except ε), one table row per (network, ε) so
networks sit side by side, a figure per section (metric vs ε when the section has several ε,
else bars per network), and per-run notes (points refuted by the verifier but missed by PGD,
unknowns, invariant breaches). The runs come from :mod:`robustprop.verify.report.load`, the
Markdown or HTML text from :mod:`robustprop.verify.report.markdown`, the figures from
:mod:`robustprop.verify.report.plots`. The report and its ``<stem>_files/`` folder are built
in a temporary folder and renamed into place.

What it deletes: only what it made. The figures folder carries a marker file
(:data:`MARKER`); a rerun replaces a ``<stem>_files/`` folder only when it holds that marker.
A folder of that name without it (the user's, or a symbolic link) is refused, never
touched. The report itself must be a regular file or a new path; a symbolic link is followed
(the report and its figures go beside the link's target) and a device, FIFO or ``-`` is
refused, since the figures need a folder beside the report.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

from robustprop.properties.errors import InputError
from robustprop.training.cache import output_kind
from robustprop.verify.formats.output_file import is_stdout
from robustprop.verify.formats.text import printable
from robustprop.verify.report.markdown import html, markdown
from robustprop.verify.report.model import Figure, RunRecord, sections
from robustprop.verify.report.plots import section_figure

log = logging.getLogger(__name__)

__all__ = [
    "MARKER",
    "check_output_path",
    "check_report_path",
    "figures_folder",
    "report_format",
    "write_report",
]

#: The file that marks a figures folder as made by ``verify report`` (so a rerun may replace it).
MARKER: Final = ".robustprop-report"
_MARKER_TEXT: Final = (
    "robustprop report figures: made by `verify report`, replaced by its next run with the "
    "same report name. Delete this file to keep the folder from being replaced.\n"
)


def report_format(path: Path) -> Literal["markdown", "html"]:
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        return "markdown"
    if suffix in (".html", ".htm"):
        return "html"
    raise InputError(
        f"{printable(path)}: the report must end in .md or .html, "
        f"got {printable(suffix) or 'no suffix'!r}"
    )


def check_output_path(flag: str, path: Path) -> None:
    """Refuse an output path that cannot become a file: a folder, or one below a file
    (``-``, standard output, is accepted)."""
    if is_stdout(path):
        return
    if path.is_dir():
        raise InputError(f"{flag} {printable(path)}: is a directory, expected a file name")
    folder = next((p for p in path.parents if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise InputError(f"{flag} {printable(path)}: {printable(folder)} is a file, not a folder")


def _target(out: Path) -> Path:
    """Where the report goes: ``out``, or the target of ``out`` when it is a link."""
    if is_stdout(out):
        raise InputError("-o -: the report has figure files beside it; name a .md or .html file")
    check_output_path("-o", out)
    try:
        kind = output_kind(out)
    except OSError as err:  # a loop of links, a folder we may not search
        raise InputError(f"-o {printable(out)}: cannot write ({err.strerror or err})") from err
    if kind not in ("new", "regular file"):
        raise InputError(
            f"-o {printable(out)}: is a {kind}; the report must be a file (its figures go "
            "in a folder beside it)"
        )
    return Path(os.path.realpath(out)) if out.is_symlink() else out


def figures_folder(out: Path) -> Path:
    """The ``<stem>_files/`` folder of the report ``out`` (beside a link's target)."""
    target = _target(out)
    return target.parent / f"{target.stem}_files"


def check_report_path(out: Path) -> None:
    """Refuse, before any work, a report path :func:`write_report` would refuse."""
    report_format(out)
    folder = figures_folder(out)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise InputError(
            f"{printable(folder)}: exists and is not a folder made by verify report; the "
            f"figures of -o {printable(out)} go there (move it away or choose another -o)"
        )
    if folder.exists() and not _is_ours(folder):
        raise InputError(
            f"{printable(folder)}: exists and was not made by verify report (no {MARKER} "
            f"file in it); the figures of -o {printable(out)} go there, and it is never "
            "replaced: move it away or choose another -o"
        )


def _is_ours(folder: Path) -> bool:
    try:
        return (folder / MARKER).read_text(encoding="utf-8") == _MARKER_TEXT
    except (OSError, UnicodeDecodeError):
        return False


def write_report(
    out: Path,
    runs: Sequence[RunRecord],
    inputs: Sequence[Path],
    version: str,
) -> list[Figure]:
    """Write the report at ``out`` (Markdown or HTML by suffix) and its figures (PNG, with
    PDF and SVG beside each; the HTML page embeds the PNGs and needs no other file).

    Figures go to ``<stem>_files/`` beside ``out`` (replacing an earlier one that this
    command made, see the module docstring). Everything is built in a temporary folder next
    to ``out`` and renamed into place, so a failure leaves no partial report.
    """
    fmt = report_format(out)
    check_report_path(out)
    target = _target(out)
    final_files = figures_folder(out)
    files_name = final_files.name
    groups = sections(runs)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    except OSError as err:
        raise InputError(f"-o {printable(out)}: cannot write ({err.strerror or err})") from err
    try:
        staging = tmp / files_name
        staging.mkdir()
        (staging / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
        figures = [section_figure(s, i + 1, staging, files_name) for i, s in enumerate(groups)]
        if fmt == "markdown":
            text = markdown(groups, figures, inputs, version)
        else:  # self-contained: the figures embedded (the files stay beside it too)
            images = [(staging / Path(f.relpath).name).read_bytes() for f in figures]
            text = html(groups, figures, inputs, version, images)
        (tmp / target.name).write_text(text, encoding="utf-8")
        _swap_in(staging, final_files, tmp / "previous")
        os.replace(tmp / target.name, target)
    except OSError as err:
        raise InputError(f"-o {printable(out)}: cannot write ({err.strerror or err})") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # made here: the staging folder, our old one
    log.info("wrote %s with %d figures in %s", out, len(figures), final_files)
    return figures


def _swap_in(staging: Path, final: Path, previous: Path) -> None:
    """Move ``staging`` to ``final``; an earlier folder there (checked to be ours) goes to
    ``previous`` (deleted with the temporary folder), and comes back if the move fails."""
    if final.exists():
        if not _is_ours(final) or final.is_symlink():  # checked before; changed since
            raise InputError(f"{printable(final)}: was not made by verify report; not replaced")
        final.rename(previous)
    try:
        staging.rename(final)
    except BaseException:
        if previous.exists():
            previous.rename(final)
        raise
