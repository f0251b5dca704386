"""``verify run``: decide a property on data points of a network and gate on the result."""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

import click

from robustprop.api import check, for_property, load
from robustprop.lazy import load as load_heavy
from robustprop.properties import PROPERTIES
from robustprop.properties.base import REFERENCES
from robustprop.properties.errors import InputError, InternalError
from robustprop.training.cache import cache_dir
from robustprop.training.data import SPLITS
from robustprop.verify.cli.options import progress_option, shown, solver_options
from robustprop.verify.cli.param_types import TableChoice
from robustprop.verify.cli.printout import print_summary
from robustprop.verify.cli.run_flags import RunFlags
from robustprop.verify.cli.version import tool_version
from robustprop.verify.engine.backends.registry import require_backend
from robustprop.verify.engine.network import SUPPORTED_OPS
from robustprop.verify.formats.output_file import check_output, is_stdout, writes_in_place
from robustprop.verify.formats.text import printable
from robustprop.verify.report.document import sweep_document, to_json, write_json
from robustprop.verify.report.junit import write_junit
from robustprop.verify.run.config import ATTACK_PRESETS
from robustprop.verify.run.gates import GateBound, Gates
from robustprop.verify.run.progress import ProgressBar
from robustprop.verify.run.reuse import ALL_STATUSES
from robustprop.verify.run.signals import Interrupted, stop_on_signals
from robustprop.verify.run.stages import Executor, Strategy
from robustprop.verify.run.summary import METRICS


def _values(enum: type[StrEnum]) -> list[str]:
    return [e.value for e in enum]


def _split_metrics(value: str) -> tuple[str, ...]:
    items = tuple(m.strip() for m in value.split(",") if m.strip())
    for m in items:
        if m not in METRICS:
            raise InputError(f"--metrics: unknown metric {m!r} (choose from {', '.join(METRICS)})")
    if not items:
        raise InputError("--metrics: name at least one metric")
    return items


@click.command(
    "run",
    epilog=f"Supported ONNX ops: {', '.join(SUPPORTED_OPS)}. A final Softmax/LogSoftmax is "
    "dropped for cr (the argmax is unchanged) and refused for sr, lr and scr (they need the "
    "logits).",
)
@click.option(
    "--property",
    "prop_name",
    type=TableChoice("property", PROPERTIES),
    required=True,
    help="Property: standard (sr), Lipschitz (lr), classification (cr) or strong "
    "classification (scr) robustness.",
)
@click.option(
    "--net", "net", required=True, type=click.Path(path_type=Path), help="ONNX network to check."
)
@click.option("--data", default=None, help="Dataset name or .npz (x, y); default: the model's.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Dataset folder.")
@shown(
    "--split",
    type=TableChoice("split", SPLITS),
    default="test",
    help="Which split of the data set the points come from.",
)
@shown("--points", type=int, default=100, help="How many points.")
@click.option(
    "--sample-points",
    "point_seed",
    type=int,
    default=None,
    help="Seed for a random choice of points (default: the first N rows).",
)
@shown(
    "--eps",
    default="0.1",
    help="Ball radius ε (L∞); a comma-separated list runs a sweep.",
)
@click.option("--delta", type=float, default=None, help="SR: output bound δ (default 10).")
@click.option("--lipschitz", type=float, default=None, help="LR: constant L (default 10).")
@click.option("--eta", type=float, default=None, help="SCR: probability η (default 0.52).")
@shown(
    "--reference",
    type=TableChoice("reference", REFERENCES),
    default="output",
    help="Compare with f(x̂) or with the data label.",
)
@shown(
    "--metrics",
    default=",".join(METRICS),
    help=f"Comma-separated metrics to measure, from: {', '.join(METRICS)}.",
)
@solver_options(
    backend_help="Exact backend; auto: Z3 for tiny networks, else the Marabou/MILP portfolio "
    "(Marabou with --strategy plain).",
    strategy_help="staged: center, PGD, bound propagation, then the exact backend; plain: every "
    "point straight to the exact backend (the baseline).",
)
@shown(
    "--device",
    default="cpu",
    help="Where PGD and bound propagation run (cpu, cuda, cuda:N).",
)
@shown(
    "--timeout",
    "timeout_s",
    type=float,
    default=60.0,
    help="Wall-clock seconds per point for the exact stage (solver, set-up and replay); a "
    "point still running then is stopped and unknown.",
)
@click.option(
    "--max-time",
    "max_time_s",
    type=float,
    default=None,
    help="Wall-clock seconds for the whole run (all ε of a sweep); points not decided by then "
    "are unknown (reason: run time limit).",
)
@shown("--jobs", type=int, default=1, help="Worker processes.")
@shown(
    "--tau",
    type=float,
    default=1e-6,
    help="Strictness margin: a violation must exceed it.",
)
@shown(
    "--attack",
    "attack_preset",
    type=TableChoice("attack preset", ATTACK_PRESETS),
    default="strong",
    help="PGD preset for security.",
)
@click.option("--attack-steps", type=int, default=None, help="Override PGD steps.")
@click.option("--restarts", type=int, default=None, help="Override PGD restarts.")
@shown(
    "--samples",
    type=int,
    default=1000,
    help="Uniform samples per point for accuracy.",
)
@shown("--seed", type=int, default=0, help="Seed of PGD and sampling.")
@click.option(
    "--min-satisfaction",
    type=float,
    default=None,
    help="Gate: exit 1 if the certified lower bound is below this.",
)
@click.option(
    "--require",
    type=TableChoice("requirement", ("holds",)),
    default=None,
    help="Gate: exit 1 unless every point is proved.",
)
@shown(
    "--gate-on",
    type=TableChoice("satisfaction bound", _values(GateBound)),
    default="lower",
    help="Which satisfaction bound --min-satisfaction checks.",
)
@click.option("--min-security", type=float, default=None, help="Gate: minimum PGD security.")
@click.option(
    "-o",
    "--output",
    "--json",
    "json_out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the run document (JSON) here.",
)
@click.option(
    "--junit",
    "junit_out",
    type=click.Path(path_type=Path),
    default=None,
    help="JUnit XML: one test case per point.",
)
@click.option(
    "--store",
    type=click.Path(path_type=Path),
    default=None,
    help="SQLite store of verdicts (default: beside --json, else the cache dir).",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the store.")
@click.option(
    "--trust-store",
    is_flag=True,
    help="Let gates rest on stored holds/unknown verdicts without re-deciding them (the store "
    "is an unchecked cache: anyone who can write the file can write a verdict).",
)
@shown(
    "--executor",
    type=TableChoice("executor", _values(Executor)),
    default="local",
    help="Where exact queries run: local worker processes or a Ray cluster.",
)
@click.option("--address", default=None, help="Ray cluster address (default: a local instance).")
@click.option(
    "--export-vnnlib",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write each point's query as VNN-LIB (sr, cr) with an instances.csv.",
)
@click.option(
    "--input-mean",
    default=None,
    help="The model takes (x - mean) / std: the mean, one value or one per channel "
    "(comma-separated); points and regions stay in pixel space.",
)
@click.option(
    "--input-std",
    default=None,
    help="The model takes (x - mean) / std: the std, one value or one per channel "
    "(comma-separated).",
)
@click.option(
    "--domain",
    "domain_text",
    default=None,
    help="Input box LO,HI of the regions (default: the model's 'domain' metadata, else 0,1).",
)
@progress_option()
def command(**params: Any) -> None:
    """Decide a robustness property on data points of an ONNX network.

    Prints holds / violated / unknown, the satisfaction interval, security and accuracy.
    Exit code 0 when every gate passes, 1 when a gate fails, 2 for bad input, 3 for
    internal or solver errors (including a broken invariant), 130 / 143 when stopped by
    SIGINT / SIGTERM (what was decided is kept in the store and written, marked incomplete).

    The store is an untrusted cache: its holds and unknown verdicts are re-decided when a
    gate could rest on them (unless --trust-store), a stored violated counts when its witness
    replays; every reused verdict is marked in the printout, the JSON and the JUnit XML.
    """
    flags = RunFlags(**params)
    metrics = _split_metrics(flags.metrics)
    if "satisfaction" in metrics:  # the only metric that needs a solver: checked before any work
        require_backend(flags.backend, plain=flags.strategy == Strategy.PLAIN)
    props = flags.properties()
    net = flags.net
    if not net.is_file():
        raise InputError(f"--net {net}: no such file")
    if flags.export_vnnlib is not None and flags.prop_name not in ("sr", "cr"):
        raise InputError(
            f"--export-vnnlib: {flags.prop_name} has no VNN-LIB 1.0 form (LR needs an auxiliary "
            "distance variable, SCR a softmax); use it with sr or cr"
        )
    for flag, value in (
        ("--timeout", flags.timeout_s),
        ("--points", flags.points),
        ("--samples", flags.samples),
        ("--jobs", flags.jobs),
        ("--max-time", 1 if flags.max_time_s is None else flags.max_time_s),
    ):
        if not value > 0:
            raise InputError(f"{flag} must be > 0, got {value}")
    if flags.tau < 0:
        raise InputError(f"--tau must be >= 0, got {flags.tau}")
    if flags.trust_store and flags.no_cache:
        raise InputError("--trust-store: there is no store to trust with --no-cache")
    gates = Gates(
        flags.min_satisfaction,
        GateBound(flags.gate_on),
        flags.min_security,
        flags.require == "holds",
    )
    for flag, out in (("--json", flags.json_out), ("--junit", flags.junit_out)):
        if out is not None:
            check_output(out, flag)
    to_stdout = any(out is not None and is_stdout(out) for out in (flags.json_out, flags.junit_out))
    if (
        flags.json_out is not None
        and flags.junit_out is not None
        and (is_stdout(flags.json_out) and is_stdout(flags.junit_out))
    ):
        raise InputError("--json - and --junit -: only one of them can go to standard output")
    model = for_property(
        load(net, input_mean=flags.stats("mean"), input_std=flags.stats("std")), props[0]
    )
    if flags.data is None:
        dataset = model.metadata().get("dataset")
        if dataset is None:
            raise InputError(
                f"--data is needed: {net} has no 'dataset' in its metadata "
                "(not exported by robustprop)"
            )
        click.echo(
            f"data: {printable(dataset)} (from the model's metadata; --data to choose)", err=True
        )
    store_path = None if flags.no_cache else (flags.store or _default_store(flags.json_out))
    reuse = ALL_STATUSES if flags.trust_store else ALL_STATUSES - gates.rests_on()
    deadline = None if flags.max_time_s is None else time.monotonic() + flags.max_time_s
    documents = []
    failed: list[str] = []
    breaches: list[str] = []
    stopped: Interrupted | None = None
    redirect = load_heavy("tqdm.contrib.logging").logging_redirect_tqdm  # logs above the bar
    with stop_on_signals() as signals, redirect():
        for prop in props:
            bar = ProgressBar(
                flags.points,
                disabled=not flags.show_progress(),
                label=f"{prop.name} eps={prop.eps:g}",
            )
            try:
                result = check(
                    model,
                    prop,
                    data=flags.data,
                    points=flags.points,
                    split=flags.split,
                    sample_seed=flags.point_seed,
                    data_dir=flags.data_dir,
                    metrics=metrics,
                    timeout=flags.timeout_s,
                    jobs=flags.jobs,
                    store=store_path,
                    reuse=reuse,
                    trust_store=flags.trust_store,
                    max_time=None if deadline is None else max(1e-3, deadline - time.monotonic()),
                    progress=bar.update,
                    backend=flags.backend,
                    strategy=flags.strategy,
                    tau=flags.tau,
                    attack_config=flags.pgd(),
                    samples=flags.samples,
                    seed=flags.seed,
                    device=flags.device,
                    executor=flags.executor,
                    address=flags.address,
                    export_vnnlib=flags.export_vnnlib,
                    domain=flags.domain(),
                    argv=sys.argv,
                )
            except Interrupted as err:
                stopped = err
                if err.result is None:  # stopped before this ε had anything to show
                    break
                result = err.result
            finally:
                bar.close()
            print_summary(result, net, gated=gates.active, err=to_stdout)
            documents.append(to_json(result, tool_version()))
            breaches.extend(result.breaches)
            failed.extend(gates.failures(result.summary, prop.eps))
            if result.store is not None and result.store.unavailable:
                store_path = None  # warned once; the other ε go without it too
            if stopped is not None:
                break
        with signals.hold():  # a signal now waits until the documents are written whole
            if flags.json_out is not None and documents:
                doc = (
                    documents[0]
                    if len(documents) == 1
                    else sweep_document(documents, tool_version())
                )
                write_json(flags.json_out, doc)
                click.echo(f"wrote {printable(str(flags.json_out))}", err=to_stdout)
            if flags.junit_out is not None and documents:
                write_junit(flags.junit_out, documents)
                click.echo(f"wrote {printable(str(flags.junit_out))}", err=to_stdout)
    if stopped is None and signals.received is not None:
        stopped = Interrupted(signals.received)
    if stopped is not None:
        kept = "kept in the store" + (" and written above" if documents else "")
        click.echo(f"{stopped}: stopped, no gate checked; what was decided is {kept}", err=True)
        sys.exit(stopped.exit_code)
    if breaches:
        raise InternalError(f"{len(breaches)} invariant breach(es), a bug: {breaches[0]}")
    for line in failed:
        click.echo(f"gate failed: {line}", err=True)
    sys.exit(1 if failed else 0)


def _default_store(json_out: Path | None) -> Path:
    """Beside the JSON report when there is one, else in the cache directory."""
    if json_out is not None and not writes_in_place(json_out):
        return json_out.parent / ".robustprop-store.sqlite"
    return cache_dir() / "verdicts.sqlite"
