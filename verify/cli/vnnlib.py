"""``verify vnnlib``: decide one VNN-LIB instance, answering in the VNN-COMP result format.

stdout: first line ``sat``, ``unsat`` or ``unknown``; after ``sat`` the replay-confirmed witness
``((X_0 v) ... (Y_0 v) ...)`` with the outputs computed by onnxruntime on the model as it is,
values written with ``repr`` (full precision). Exit code 0 for ``unsat`` (the property holds),
1 otherwise; 2 for bad input, 3 for internal errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

from robustprop.api import check_vnnlib
from robustprop.properties.errors import InputError
from robustprop.verify.cli.param_types import TableChoice
from robustprop.verify.run.config import BACKEND_CHOICES
from robustprop.verify.run.stages import Strategy


def format_witness(x: np.ndarray, y: np.ndarray) -> str:
    """VNN-COMP counterexample text: ``((X_0 v)\\n (X_1 v)\\n ... (Y_j v))``."""
    items = [f"(X_{i} {float(v)!r})" for i, v in enumerate(np.ravel(x))]
    items += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(np.ravel(y))]
    return "(" + "\n ".join(items) + ")"


@click.command("vnnlib")
@click.option(
    "--net",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="ONNX network.",
)
@click.option(
    "--spec",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="VNN-LIB property (describes the unsafe set).",
)
@click.option(
    "--timeout",
    type=float,
    default=60.0,
    show_default=True,
    help="Wall-clock budget in seconds for all solver queries of the instance.",
)
@click.option(
    "--backend",
    type=TableChoice("backend", BACKEND_CHOICES),
    default="auto",
    show_default=True,
    help="Exact backend; auto: Marabou for --strategy plain, else Z3 for tiny networks and the "
    "Marabou/MILP portfolio beyond.",
)
@click.option(
    "--strategy",
    type=TableChoice("strategy", [s.value for s in Strategy]),
    default="staged",
    show_default=True,
    help="staged: PGD search, bound propagation, then the exact backend; plain: the exact "
    "backend alone (the baseline).",
)
@click.option(
    "--attack/--no-attack",
    default=True,
    show_default=True,
    help="staged: search for a counterexample with PGD before calling the solver.",
)
def command(
    net: Path, spec: Path, timeout: float, backend: str, strategy: str, attack: bool
) -> None:
    """Decide whether the unsafe set of SPEC contains a point of NET (sat) or not (unsat)."""
    if not timeout > 0:
        raise InputError(f"--timeout must be positive, got {timeout}")
    result = check_vnnlib(
        net, spec, backend=backend, timeout=timeout, attack=attack, strategy=strategy
    )
    click.echo(result.status)
    if result.status == "sat":
        assert result.x is not None and result.y is not None
        click.echo(format_witness(result.x, result.y))
    click.echo(f"{result.status} in {result.time_s:.2f} s: {result.reason}", err=True)
    sys.exit(0 if result.status == "unsat" else 1)
