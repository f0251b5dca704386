"""``verify vnnlib``: decide VNN-LIB instances, following VNN-COMP's conventions.

One instance (``--net``, ``--spec``; either may be gzip-compressed): stdout's first line is
``sat``, ``unsat``, ``timeout`` or ``unknown``; after ``sat`` the replay-confirmed witness
``((X_0 v) ... (Y_0 v) ...)`` with the outputs computed by onnxruntime on the model as it is,
values written with ``repr`` (full precision). ``-o``/``--results-file`` writes the same text to
a file, atomically (VNN-COMP's result file; ``error`` when the instance could not be run).

A batch (``--instances instances.csv``): every instance of the CSV with its own timeout (times
``--timeout-scale``, at most ``--timeout``), a table line per instance as it is decided and the
totals; expected answers from ``--expected`` or a ``ground_truth.csv`` beside the CSV.

Exit codes (``--exit-codes vnncomp``, the default): 0 whenever an answer was reached (``sat``
included), and in a batch when no answer contradicts the expected one (else 1);
``--exit-codes verdict``: 0 for ``unsat`` (the property holds), 1 otherwise. Both: 2 for bad
input, 3 for internal errors.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import click

from robustprop.api import check_vnnlib
from robustprop.properties.errors import InputError
from robustprop.verify.cli.options import FILE, output_file_option, shown, solver_options
from robustprop.verify.cli.param_types import TableChoice
from robustprop.verify.engine.backends.registry import require_backend
from robustprop.verify.formats.output_file import check_output, write_output
from robustprop.verify.formats.text import printable
from robustprop.verify.formats.vnncomp import (
    format_witness,
    read_expected,
    read_instances,
    results_text,
)
from robustprop.verify.run.stages import Strategy
from robustprop.verify.run.vnnlib_check import InstanceResult, check_instances

__all__ = ["EXIT_CODES", "TABLE_HEADER", "command", "format_witness", "summary_lines", "table_line"]

#: ``--exit-codes`` choices: VNN-COMP's (0 whenever an answer was written) or by verdict.
EXIT_CODES = ("vnncomp", "verdict")


@click.command("vnnlib")
@click.option("--net", type=FILE, help="ONNX network (.onnx or .onnx.gz).")
@click.option(
    "--spec",
    type=FILE,
    help="VNN-LIB property, describing the unsafe set (.vnnlib or .vnnlib.gz).",
)
@click.option(
    "--instances",
    type=FILE,
    help="Batch mode: a VNN-COMP instances.csv (onnx,vnnlib,timeout per line, paths relative "
    "to the CSV's folder) instead of --net/--spec.",
)
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Wall-clock budget in seconds for the instance [default: 60]; with --instances a cap "
    "on each instance's own timeout.",
)
@shown(
    "--timeout-scale",
    type=float,
    default=1.0,
    help="With --instances: multiply each instance's timeout by this factor.",
)
@output_file_option(
    "--results-file",
    "results_file",
    help="Write VNN-COMP's result file: sat/unsat/timeout/unknown/error, then the "
    "counterexample after sat.",
)
@click.option(
    "--expected",
    type=FILE,
    help="With --instances: expected answers (CSV with a header naming onnx, vnnlib and "
    "expected or label) [default: ground_truth.csv beside the instances, if any].",
)
@shown(
    "--exit-codes",
    type=TableChoice("exit-code scheme", EXIT_CODES),
    default="vnncomp",
    help="vnncomp: 0 whenever an answer was reached; verdict: 0 for unsat, 1 otherwise.",
)
@solver_options(
    backend_help="Exact backend; auto: Marabou for --strategy plain, else Z3 for tiny networks "
    "and the Marabou/MILP portfolio beyond.",
    strategy_help="staged: falsifier, bound propagation, then the exact backend; plain: the "
    "exact backend alone (the baseline).",
)
@shown(
    "--attack/--no-attack",
    default=True,
    help="staged: search for a counterexample with the falsifier before and beside the solver "
    "(off: no falsifier; branch and bound still tries points of its own sub-domains, as part of "
    "its search).",
)
def command(
    net: Path | None,
    spec: Path | None,
    instances: Path | None,
    timeout: float | None,
    timeout_scale: float,
    results_file: Path | None,
    expected: Path | None,
    exit_codes: str,
    backend: str,
    strategy: str,
    attack: bool,
) -> None:
    """Decide whether the unsafe set of SPEC contains a point of NET (sat) or not (unsat)."""
    if timeout is not None and not timeout > 0:
        raise InputError(f"--timeout must be positive, got {timeout}")
    if instances is not None:
        if net is not None or spec is not None or results_file is not None:
            raise InputError(
                "--instances runs a batch: give it without --net, --spec, --results-file"
            )
        require_backend(backend, plain=strategy == Strategy.PLAIN)
        code = _batch(instances, expected, timeout, timeout_scale, backend, strategy, attack)
        sys.exit(code)
    if net is None or spec is None:
        raise InputError("give --net and --spec (one instance) or --instances (a batch)")
    if results_file is not None:
        check_output(results_file, "--results-file")
    try:
        require_backend(backend, plain=strategy == Strategy.PLAIN)  # before any work
        result = check_vnnlib(
            net, spec, backend=backend, timeout=timeout or 60.0, attack=attack, strategy=strategy
        )
    except Exception:
        if results_file is not None:
            _write_results(results_file, results_text("error"))
        raise
    text = results_text(result.answer, result.x, result.y)
    if results_file is not None:
        _write_results(results_file, text)
    click.echo(text, nl=False)
    click.echo(f"{result.answer} in {result.time_s:.2f} s: {result.reason}", err=True)
    if exit_codes == "verdict":
        sys.exit(0 if result.answer == "unsat" else 1)
    sys.exit(0)


def _write_results(path: Path, text: str) -> None:
    def write(stream: IO[bytes]) -> None:
        stream.write(text.encode("ascii"))

    write_output(path, "--results-file", write)


def _batch(
    csv_path: Path,
    expected: Path | None,
    timeout: float | None,
    scale: float,
    backend: str,
    strategy: str,
    attack: bool,
) -> int:
    """Run the batch, printing the table as it goes; the exit code."""
    answers_path = expected
    if answers_path is None and (csv_path.parent / "ground_truth.csv").is_file():
        answers_path = csv_path.parent / "ground_truth.csv"
    answers = read_expected(answers_path) if answers_path is not None else None
    listed = read_instances(csv_path, answers)
    click.echo(f"{len(listed)} instances from {printable(csv_path)}", err=True)
    click.echo(TABLE_HEADER)

    def show(row: InstanceResult) -> None:
        click.echo(table_line(row))

    rows = check_instances(
        listed,
        timeout_scale=scale,
        max_timeout_s=timeout,
        backend=backend,
        strategy=strategy,
        attack=attack,
        on_result=show,
    )
    for line in summary_lines(rows):
        click.echo(line)
    return 1 if any(r.wrong for r in rows) else 0


TABLE_HEADER = (
    f"{'instance':48} {'result':8} {'expected':8} {'stage':7} {'time_s':>8} {'limit_s':>8}"
)


def table_line(row: InstanceResult) -> str:
    """One instance's line of the batch table (``WRONG`` marks a contradicted answer)."""
    expected = row.instance.expected or "-"
    mark = "  WRONG" if row.wrong else ""
    note = f"  {printable(row.error)[:120]}" if row.error else ""
    return (
        f"{printable(row.instance.name)[:48]:48} {row.answer:8} {expected:8} {row.stage:7} "
        f"{row.time_s:8.2f} {row.timeout_s:8.1f}{mark}{note}"
    )


def summary_lines(rows: Sequence[InstanceResult]) -> list[str]:
    """The batch totals: answers by kind, decided, wrong, and the wall time."""
    counts = Counter(r.answer for r in rows)
    kinds = ", ".join(f"{k} {counts[k]}" for k in ("sat", "unsat", "timeout", "unknown", "error"))
    with_expected = sum(r.instance.expected is not None for r in rows)
    wall = sum(r.time_s for r in rows)
    return [
        f"total: {len(rows)} instances; {kinds}",
        f"decided {sum(r.decided for r in rows)} of {len(rows)}; wrong {sum(r.wrong for r in rows)}"
        f" (of {with_expected} with an expected answer); wall {wall:.1f} s",
    ]
