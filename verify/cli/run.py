"""``verify run``: decide a property on data points of a network and gate on the result."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from robustprop.properties.errors import InputError, InternalError
from robustprop.verify.runs.points import PointSelection


def _split_metrics(value: str) -> tuple[str, ...]:
    from robustprop.verify.runs.runner import METRICS

    items = tuple(m.strip() for m in value.split(",") if m.strip())
    for m in items:
        if m not in METRICS:
            raise InputError(f"--metrics: unknown metric {m!r} (choose from {', '.join(METRICS)})")
    if not items:
        raise InputError("--metrics: name at least one metric")
    return items


@click.command("run")
@click.option("--property", "prop_name", required=True, help="Property: sr, lr, cr or scr.")
@click.option(
    "--net", "net", required=True, type=click.Path(path_type=Path), help="ONNX network to check."
)
@click.option("--data", default=None, help="Dataset name or .npz (x, y); default: the model's.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Dataset folder.")
@click.option("--split", type=click.Choice(["train", "test"]), default="test", show_default=True)
@click.option("--points", type=int, default=100, show_default=True, help="How many points.")
@click.option(
    "--sample-points",
    "point_seed",
    type=int,
    default=None,
    help="Seed for a random choice of points (default: the first N rows).",
)
@click.option(
    "--eps",
    default="0.1",
    show_default=True,
    help="Ball radius ε (L∞); a comma-separated list runs a sweep.",
)
@click.option("--delta", type=float, default=None, help="SR: output bound δ (default 10).")
@click.option("--lipschitz", type=float, default=None, help="LR: constant L (default 10).")
@click.option("--eta", type=float, default=None, help="SCR: probability η (default 0.52).")
@click.option(
    "--reference",
    type=click.Choice(["output", "label"]),
    default="output",
    show_default=True,
    help="Compare with f(x̂) or with the data label.",
)
@click.option("--metrics", default="satisfaction,security,accuracy", show_default=True)
@click.option(
    "--backend",
    type=click.Choice(["auto", "portfolio", "marabou", "milp", "z3"]),
    default="auto",
    show_default=True,
    help="Exact backend; auto: Z3 for tiny networks, else the Marabou/MILP portfolio "
    "(Marabou with --strategy plain).",
)
@click.option(
    "--strategy",
    type=click.Choice(["staged", "plain"]),
    default="staged",
    show_default=True,
    help="staged: center, PGD, bound propagation, then the exact backend; plain: every point "
    "straight to the exact backend (the baseline).",
)
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    help="Where PGD and bound propagation run (cpu, cuda, cuda:N).",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds per point for the exact stage.",
)
@click.option("--jobs", type=int, default=1, show_default=True, help="Worker processes.")
@click.option(
    "--tau",
    type=float,
    default=1e-6,
    show_default=True,
    help="Strictness margin: a violation must exceed it.",
)
@click.option(
    "--attack",
    "attack_preset",
    type=click.Choice(["strong", "paper"]),
    default="strong",
    show_default=True,
    help="PGD preset for security.",
)
@click.option("--attack-steps", type=int, default=None, help="Override PGD steps.")
@click.option("--restarts", type=int, default=None, help="Override PGD restarts.")
@click.option(
    "--samples",
    type=int,
    default=1000,
    show_default=True,
    help="Uniform samples per point for accuracy.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--min-satisfaction",
    type=float,
    default=None,
    help="Gate: exit 1 if the certified lower bound is below this.",
)
@click.option(
    "--require",
    type=click.Choice(["holds"]),
    default=None,
    help="Gate: exit 1 unless every point is proved.",
)
@click.option(
    "--gate-on",
    type=click.Choice(["lower", "upper"]),
    default="lower",
    show_default=True,
    help="Which satisfaction bound --min-satisfaction checks.",
)
@click.option("--min-security", type=float, default=None, help="Gate: minimum PGD security.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None)
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
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where exact queries run: local worker processes or a Ray cluster.",
)
@click.option("--address", default=None, help="Ray cluster address (default: a local instance).")
@click.option(
    "--export-vnnlib",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write each point's query as VNN-LIB (sr, cr) with an instances.csv.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def command(
    prop_name: str,
    net: Path,
    data: str | None,
    data_dir: Path | None,
    split: str,
    points: int,
    point_seed: int | None,
    eps: str,
    delta: float | None,
    lipschitz: float | None,
    eta: float | None,
    reference: str,
    metrics: str,
    backend: str,
    strategy: str,
    device: str,
    timeout_s: float,
    jobs: int,
    tau: float,
    attack_preset: str,
    attack_steps: int | None,
    restarts: int | None,
    samples: int,
    seed: int,
    min_satisfaction: float | None,
    require: str | None,
    gate_on: str,
    min_security: float | None,
    json_out: Path | None,
    junit_out: Path | None,
    store: Path | None,
    no_cache: bool,
    executor: str,
    address: str | None,
    export_vnnlib: Path | None,
    no_progress: bool,
) -> None:
    """Decide a robustness property on data points of an ONNX network.

    Prints holds / violated / unknown, the satisfaction interval, security and accuracy.
    Exit code 0 when every gate passes, 1 when a gate fails, 2 for bad input, 3 for
    internal or solver errors (including a broken invariant).
    """
    from dataclasses import replace

    from robustprop.properties import PGDConfig, make_property

    eps_values = _eps_list(eps)
    props = []
    for e in eps_values:
        params: dict[str, float | str] = {"eps": e, "reference": reference}
        for name, value in (("delta", delta), ("lipschitz", lipschitz), ("eta", eta)):
            if value is not None:
                params[name] = value
        try:
            props.append(make_property(prop_name, **params))
        except InputError as err:
            raise InputError(f"--property {prop_name}: {err}") from err
    if not net.is_file():
        raise InputError(f"--net {net}: no such file")
    if export_vnnlib is not None and prop_name not in ("sr", "cr"):
        raise InputError(
            f"--export-vnnlib: {prop_name} has no VNN-LIB 1.0 form (LR needs an auxiliary "
            "distance variable, SCR a softmax); use it with sr or cr"
        )
    for flag, value in (
        ("--timeout", timeout_s),
        ("--points", points),
        ("--samples", samples),
        ("--jobs", jobs),
    ):
        if not value > 0:
            raise InputError(f"{flag} must be > 0, got {value}")
    if tau < 0:
        raise InputError(f"--tau must be >= 0, got {tau}")
    for flag, bound in (("--min-satisfaction", min_satisfaction), ("--min-security", min_security)):
        if bound is not None and not 0 <= bound <= 1:
            raise InputError(f"{flag} must lie in [0, 1], got {bound}")
    for flag, out in (("--json", json_out), ("--junit", junit_out)):
        if out is not None:
            _check_writable(flag, out)
    pgd = PGDConfig.paper() if attack_preset == "paper" else PGDConfig.strong()
    if attack_steps is not None:
        pgd = replace(pgd, steps=attack_steps)
    if restarts is not None:
        pgd = replace(pgd, restarts=restarts)
    data_name = data or _default_data(net)
    store_path = None if no_cache else (store or _default_store(json_out))
    from robustprop.verify.cli.version import tool_version as _version
    from robustprop.verify.report.document import summary, sweep_document, to_json, write_json
    from robustprop.verify.runs.runner import RunConfig, run

    documents = []
    failed: list[str] = []
    breaches: list[str] = []
    for prop in props:
        config = RunConfig(
            model_path=net,
            prop=prop,
            selection=PointSelection(data_name, split, points, point_seed, data_dir),
            metrics=_split_metrics(metrics),
            backend=backend,
            timeout_s=timeout_s,
            jobs=jobs,
            tau=tau,
            attack=pgd,
            samples=samples,
            seed=seed,
            store_path=store_path,
            strategy=strategy,
            device=device,
            executor=executor,
            address=address,
            export_vnnlib=export_vnnlib,
        )
        bar = _ProgressBar(points, disabled=no_progress, label=f"{prop.name} eps={prop.eps:g}")
        try:
            result = run(config, bar.update)
        finally:
            bar.close()
        stats = summary(result)
        _print_summary(prop.name, prop.params(), stats, result.backend, net, result.reused)
        documents.append(to_json(result, _version()))
        breaches.extend(result.breaches)
        failed.extend(_gates(stats, prop.eps, min_satisfaction, gate_on, min_security, require))
    if json_out is not None:
        doc = documents[0] if len(documents) == 1 else sweep_document(documents, _version())
        write_json(json_out, doc)
        click.echo(f"wrote {json_out}")
    if junit_out is not None:
        from robustprop.verify.report.junit import write_junit

        write_junit(junit_out, documents)
        click.echo(f"wrote {junit_out}")
    if breaches:
        raise InternalError(f"{len(breaches)} invariant breach(es), a bug: {breaches[0]}")
    for line in failed:
        click.echo(f"gate failed: {line}", err=True)
    sys.exit(1 if failed else 0)


def _eps_list(raw: str) -> list[float]:
    values = []
    for item in raw.split(","):
        try:
            values.append(float(item))
        except ValueError as err:
            raise InputError(f"--eps: {item.strip()!r} is not a number") from err
    if not values:
        raise InputError("--eps: give at least one value")
    return values


def _gates(
    stats: dict[str, Any],
    eps: float,
    min_satisfaction: float | None,
    gate_on: str,
    min_security: float | None,
    require: str | None,
) -> list[str]:
    failed = []
    where = f"(eps={eps:g})"
    if min_satisfaction is not None and "satisfaction" in stats:
        bound = stats["satisfaction"][0 if gate_on == "lower" else 1]
        if bound < min_satisfaction:
            failed.append(
                f"satisfaction {gate_on} bound {bound:.3f} < --min-satisfaction "
                f"{min_satisfaction:g} {where}"
            )
    if min_security is not None and "security" in stats and stats["security"] < min_security:
        failed.append(f"security {stats['security']:.3f} < --min-security {min_security:g} {where}")
    if require == "holds" and "satisfaction" in stats and stats["holds"] < stats["points"]:
        failed.append(
            f"--require holds: {stats['points'] - stats['holds']} point(s) not proved {where}"
        )
    return failed


def _default_store(json_out: Path | None) -> Path:
    """Beside the JSON report when there is one, else in the cache directory."""
    if json_out is not None:
        return json_out.parent / ".robustprop-store.sqlite"
    from robustprop.training.cache import cache_dir

    return cache_dir() / "verdicts.sqlite"


def _default_data(net: Path) -> str:
    from robustprop.export.metadata import read_metadata

    meta = read_metadata(net)
    if "dataset" not in meta:
        raise InputError(
            f"--data is needed: {net} has no 'dataset' in its metadata (not exported by robustprop)"
        )
    return meta["dataset"]


def _check_writable(flag: str, path: Path) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    if path.is_dir():
        raise InputError(f"{flag} {path}: is a directory, expected a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{flag} {path}: folder {parent} does not exist")
    import os

    if not os.access(parent, os.W_OK):
        raise InputError(f"{flag} {path}: folder {parent} is not writable")


def _print_summary(
    name: str,
    params: dict[str, float | str],
    stats: dict[str, Any],
    backend: str,
    net: Path,
    reused: int,
) -> None:
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    click.echo(f"{name.upper()} ({shown}) on {net}, {stats['points']} points, backend {backend}")
    rows: list[tuple[str, str]] = []
    if "satisfaction" in stats:
        lo, hi = stats["satisfaction"]
        rows.append(
            (
                "holds / violated / unknown",
                f"{stats['holds']} / {stats['violated']} / {stats['unknown']}",
            )
        )
        interval = f"{lo:.3f}" if lo == hi else f"[{lo:.3f}, {hi:.3f}]"
        rows.append(("satisfaction (certified)", interval))
        rows.append(
            (
                "decided by stage",
                ", ".join(f"{k} {v}" for k, v in stats["decided_by_stage"].items()) or "-",
            )
        )
    if "security" in stats:
        rows.append(("security (PGD)", f"{stats['security']:.3f}"))
    if "accuracy" in stats and stats["accuracy"] is not None:
        rows.append((f"accuracy ({stats['samples']} samples)", f"{stats['accuracy']:.3f}"))
    missed = stats.get("refuted_but_missed_by_attack")
    if missed:
        rows.append(("refuted by solver, missed by PGD", str(len(missed))))
    if reused:
        rows.append(("reused from the store", f"{reused} verdict(s)"))
    rows.append(("time", f"{stats['time_s']:.1f} s"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"  {key.ljust(width)}  {value}")


class _ProgressBar:
    """A tqdm bar over points on stderr with running verdict counts."""

    def __init__(self, total: int, disabled: bool, label: str = "verify") -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=total, unit="pt", file=sys.stderr, disable=disabled, desc=label, leave=False
        )
        self._counts = {"holds": 0, "violated": 0, "unknown": 0}

    def update(self, point: object) -> None:
        verdict = getattr(point, "verdict", None)
        if verdict is not None:
            self._counts[verdict.status.value] += 1
        self._bar.set_postfix(self._counts, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()
