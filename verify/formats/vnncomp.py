"""VNN-COMP's file conventions: the benchmark's ``instances.csv``, expected answers, and the
result file a tool writes per instance.

- ``instances.csv``: no header, one instance per line ``onnx,vnnlib,timeout_seconds``, paths
  relative to the folder of the CSV (:func:`read_instances`);
- expected answers (:func:`read_expected`): a CSV *with* a header naming ``onnx``, ``vnnlib``
  and ``expected`` (our ``ground_truth.csv``) or ``label`` (``competition_labels_all.csv``),
  keyed by the same relative paths;
- the result file (:func:`results_text`): the first line is one of :data:`ANSWERS`; after
  ``sat`` the counterexample as VNN-COMP's ``run_instance.sh`` expects it,
  ``((X_0 v)\\n (X_1 v)\\n ...\\n (Y_0 v)\\n ...)``, values written with ``repr`` (full
  precision, so the point read back is the point checked).

Files are read with bounded memory (:data:`MAX_CSV_BYTES`); a malformed line is an
:class:`InputError` naming the file and the line.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import InputError
from robustprop.verify.formats.compressed import read_capped
from robustprop.verify.formats.text import printable

__all__ = [
    "ANSWERS",
    "MAX_CSV_BYTES",
    "Instance",
    "format_witness",
    "read_expected",
    "read_instances",
    "results_text",
]

#: The words a result file may start with.
ANSWERS = ("sat", "unsat", "timeout", "unknown", "error")
#: Largest instances or answers CSV read.
MAX_CSV_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Instance:
    """One line of an ``instances.csv``: files resolved against the CSV's folder; ``key`` is
    the line's own ``(onnx, vnnlib)`` text (how answer tables name the instance)."""

    onnx: Path
    vnnlib: Path
    timeout_s: float
    key: tuple[str, str]
    expected: str | None = None

    @property
    def name(self) -> str:
        """``network/property``: the file names without folders and suffixes."""
        return f"{_stem(self.key[0])}/{_stem(self.key[1])}"


def _stem(path: str) -> str:
    name = Path(path).name
    for suffix in (".gz", ".onnx", ".vnnlib"):
        name = name.removesuffix(suffix)
    return name


def _rows(path: Path) -> list[list[str]]:
    data = read_capped(path, MAX_CSV_BYTES, "CSV file", "MAX_CSV_BYTES")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"cannot read CSV file {printable(path)}: {err}") from err
    return list(csv.reader(io.StringIO(text)))


def read_instances(
    path: str | Path, expected: dict[tuple[str, str], str] | None = None
) -> list[Instance]:
    """The instances of a VNN-COMP ``instances.csv`` (see the module docstring), in order, each
    with its expected answer from ``expected`` when that has it."""
    path = Path(path)
    out: list[Instance] = []
    for line, row in enumerate(_rows(path), start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        where = f"{printable(path)}:{line}"
        if len(cells) != 3 or not cells[0] or not cells[1]:
            raise InputError(f"{where}: expected 'onnx,vnnlib,timeout_seconds', got {row!r}")
        try:
            timeout = float(cells[2])
        except ValueError:
            timeout = math.nan
        if not math.isfinite(timeout) or timeout <= 0:
            raise InputError(f"{where}: timeout must be a positive number, got {cells[2]!r}")
        key = (cells[0], cells[1])
        answer = None if expected is None else expected.get(key)
        out.append(Instance(path.parent / cells[0], path.parent / cells[1], timeout, key, answer))
    if not out:
        raise InputError(f"{printable(path)}: no instances")
    return out


def read_expected(path: str | Path) -> dict[tuple[str, str], str]:
    """Expected answers by ``(onnx, vnnlib)`` from a CSV with a header (``onnx``, ``vnnlib`` and
    ``expected`` or ``label``); answers other than ``sat``/``unsat`` are left out."""
    path = Path(path)
    rows = _rows(path)
    if not rows:
        raise InputError(f"{printable(path)}: empty answers file")
    header = [c.strip() for c in rows[0]]
    column = next((c for c in ("expected", "label") if c in header), None)
    if "onnx" not in header or "vnnlib" not in header or column is None:
        raise InputError(
            f"{printable(path)}: the header must name onnx, vnnlib and expected (or label); "
            f"got {header!r}"
        )
    i, j, k = header.index("onnx"), header.index("vnnlib"), header.index(column)
    out: dict[tuple[str, str], str] = {}
    for row in rows[1:]:
        if len(row) > max(i, j, k) and row[k].strip() in ("sat", "unsat"):
            out[(row[i].strip(), row[j].strip())] = row[k].strip()
    return out


def format_witness(x: npt.ArrayLike, y: npt.ArrayLike) -> str:
    """VNN-COMP counterexample text: ``((X_0 v)\\n (X_1 v)\\n ... (Y_j v))``."""
    items = [f"(X_{i} {float(v)!r})" for i, v in enumerate(np.ravel(x))]
    items += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(np.ravel(y))]
    return "(" + "\n ".join(items) + ")"


def results_text(
    answer: str, x: npt.ArrayLike | None = None, y: npt.ArrayLike | None = None
) -> str:
    """A result file's text: the answer's line, and for ``sat`` the counterexample."""
    if answer not in ANSWERS:
        raise ValueError(f"not a VNN-COMP answer: {answer!r}")
    if answer != "sat":
        return answer + "\n"
    if x is None or y is None:
        raise ValueError("a sat result needs its counterexample (x and y)")
    return "sat\n" + format_witness(x, y) + "\n"
