"""The experiment's report: ``report.md`` with CSV tables and PNG figures beside it.

Files written under the output folder:

- ``table2.csv`` — test accuracy per dataset and regime, ours and the paper's;
- ``curves.csv`` — security and accuracy per dataset, regime, attack and ε (E1–E4);
- ``certified.csv`` — satisfaction (holds/violated/unknown), security and accuracy on the
  certified subset, with the stage that decided each verdict;
- ``figures/*.png`` — one figure per dataset and attack (all regimes), the E1 comparison,
  the bigger-network comparison, and certified vs empirical per property;
- ``report.md`` — all of it with the claim-by-claim verdicts, settings, wall time, hardware.
"""

from __future__ import annotations

import csv
import json
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustprop.verify.experiment.claims import Claim
from robustprop.verify.experiment.grid import PAPER_ACCURACY, TrainedNet
from robustprop.verify.experiment.measure import Row
from robustprop.verify.formats.text import code_span, markdown_text
from robustprop.verify.report.plots import Series, sweep_plot

__all__ = ["ReportInput", "hardware", "write_report"]


@dataclass(frozen=True)
class ReportInput:
    """Everything the report shows."""

    nets: Sequence[TrainedNet]
    curves: Sequence[Row]
    certified: Sequence[Row]
    claims: Sequence[Claim]
    settings: dict[str, Any]
    wall_s: float


def hardware() -> str:
    """CPU model, core count, and the versions of the libraries that did the work."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import maraboupy
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    marabou = getattr(maraboupy, "__version__", "2.0.0")
    return (
        f"{model}, {cores} cores usable; Python {platform.python_version()}, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), maraboupy {marabou}"
    )


def write_report(folder: Path, data: ReportInput) -> Path:
    """Write every file (module docstring); returns the path of ``report.md``."""
    figures = folder / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    _table2_csv(folder / "table2.csv", data.nets)
    _rows_csv(folder / "curves.csv", data.curves)
    _rows_csv(folder / "certified.csv", data.certified)
    pictures = _figures(figures, data)
    path = folder / "report.md"
    path.write_text(_markdown(data, pictures))
    return path


# --------------------------------------------------------------------------------------------
# CSV


def _table2_csv(path: Path, nets: Sequence[TrainedNet]) -> None:
    with path.open("w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(
            [
                "dataset",
                "regime",
                "label",
                "arch",
                "epochs",
                "train_rows",
                "test_accuracy_pct",
                "paper_pct",
                "train_s",
            ]
        )
        for n in nets:
            paper = PAPER_ACCURACY.get(n.dataset, {}).get(n.spec.key)
            w.writerow(
                [
                    n.dataset,
                    n.spec.key,
                    n.spec.label,
                    n.spec.arch,
                    n.epochs,
                    n.train_rows,
                    f"{100 * n.test_accuracy:.2f}",
                    "" if paper is None else f"{paper:.1f}",
                    f"{n.train_s:.1f}",
                ]
            )


def _rows_csv(path: Path, rows: Sequence[Row]) -> None:
    with path.open("w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(
            [
                "dataset",
                "regime",
                "property",
                "eps",
                "points",
                "security",
                "accuracy",
                "holds",
                "violated",
                "unknown",
                "satisfaction_lo",
                "satisfaction_hi",
                "stages",
                "time_s",
            ]
        )
        for r in rows:
            sat = r.satisfaction
            w.writerow(
                [
                    r.dataset,
                    r.regime,
                    r.prop,
                    f"{r.eps:g}",
                    r.points,
                    _num(r.security),
                    _num(r.accuracy),
                    _opt(r.holds),
                    _opt(r.violated),
                    _opt(r.unknown),
                    "" if sat is None else f"{sat[0]:.4f}",
                    "" if sat is None else f"{sat[1]:.4f}",
                    json.dumps(r.stages, sort_keys=True) if r.stages else "",
                    f"{r.time_s:.2f}",
                ]
            )


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _opt(value: int | None) -> str:
    return "" if value is None else str(value)


# --------------------------------------------------------------------------------------------
# figures


def _series(rows: Sequence[Row], label: str) -> Series:
    by_eps = sorted(rows, key=lambda r: r.eps)
    sats = [r.satisfaction for r in by_eps]
    return Series(
        label=label,
        eps=tuple(r.eps for r in by_eps),
        sat_lo=tuple(None if s is None else s[0] for s in sats),
        sat_hi=tuple(None if s is None else s[1] for s in sats),
        security=tuple(r.security for r in by_eps),
        accuracy=tuple(r.accuracy for r in by_eps),
    )


def _figures(folder: Path, data: ReportInput) -> list[tuple[str, Path]]:
    """(caption, path) of every figure written."""
    out: list[tuple[str, Path]] = []
    labels = {n.spec.key: n.spec.label for n in data.nets}
    datasets = list(dict.fromkeys(n.dataset for n in data.nets))
    for ds in datasets:
        regimes = [n.spec.key for n in data.nets if n.dataset == ds and n.spec.arch == "mlp"]
        for attack in ("sr", "lr", "scr"):
            lines = [
                _series(sel, labels[k])
                for k in regimes
                if (sel := _select(data.curves, ds, k, attack))
            ]
            if lines:
                path = folder / f"{ds}-{attack}-attack.png"
                title = f"{ds}: {attack.upper()} attack, every training regime"
                sweep_plot(path, title, lines)
                out.append((title, path))
        e1 = [
            _series(sel, f"{labels[k]} vs {attack.upper()} attack")
            for k in ("adversarial", "constraint-sr", "constraint-lr")
            for attack in ("sr", "lr", "scr")
            if k in labels and (sel := _select(data.curves, ds, k, attack))
        ]
        if e1:
            path = folder / f"{ds}-e1-attacks.png"
            title = f"{ds}: E1, one network against each attack (paper Figs. 2, 12-14)"
            sweep_plot(path, title, e1)
            out.append((title, path))
        big = [
            _series(sel, labels[k])
            for k in (
                "baseline",
                "augment-fgsm",
                "constraint-sr",
                "big-baseline",
                "big-augment-fgsm",
                "big-constraint-sr",
            )
            if k in labels and (sel := _select(data.curves, ds, k, "scr"))
        ]
        if any(n.spec.arch != "mlp" for n in data.nets if n.dataset == ds) and big:
            path = folder / f"{ds}-bigger-network.png"
            title = f"{ds}: paper MLP vs bigger MLP, SCR attack (paper Fig. 11)"
            sweep_plot(path, title, big)
            out.append((title, path))
        for prop in sorted({r.prop for r in data.certified if r.dataset == ds}):
            lines = [
                _series(sel, labels.get(k, k))
                for k in regimes
                if (sel := _select(data.certified, ds, k, prop))
            ]
            if lines:
                path = folder / f"{ds}-{prop}-certified.png"
                title = f"{ds}: {prop.upper()} certified satisfaction vs security vs accuracy"
                sweep_plot(path, title, lines)
                out.append((title, path))
    return out


def _select(rows: Sequence[Row], ds: str, regime: str, prop: str) -> list[Row]:
    return [r for r in rows if r.dataset == ds and r.regime == regime and r.prop == prop]


# --------------------------------------------------------------------------------------------
# Markdown


def _markdown(data: ReportInput, pictures: list[tuple[str, Path]]) -> str:
    s = data.settings
    lines = [
        "# Robustness as a property — reproduction and certified satisfaction",
        "",
        "Generated by `verify experiment`; every number below is in the CSV files beside this "
        "report.",
        "",
        "## Settings",
        "",
        f"- command: {code_span(s.get('command', 'verify experiment'))}",
        f"- compute: training {sum(n.train_s for n in data.nets) / 60:.1f} min (sum of the "
        f"networks' epoch times), measurements {_measured_s(data) / 60:.1f} min (sum over "
        f"every measurement, cached ones included); this invocation {data.wall_s / 60:.1f} "
        f"min wall (trained {sum(not n.reused for n in data.nets)} networks, reused "
        f"{sum(n.reused for n in data.nets)})",
        f"- hardware: {hardware()}",
    ]
    # Settings hold paths and the command line: shown literally, never as Markdown.
    lines += [f"- {markdown_text(k)}: {markdown_text(v)}" for k, v in s.items() if k != "command"]
    epochs = {n.epochs for n in data.nets}
    if epochs and max(epochs) < 100:
        lines += [
            "",
            f"**Reduced budget.** These networks trained for {max(epochs)} epochs, the paper's "
            "for 100: they are not the paper's networks (see Table 2), so a claim that is not "
            "confirmed here is a statement about these networks, not a refutation of the paper. "
            "`verify experiment` without --epochs/--lr runs the paper's schedule.",
        ]
    lines += ["", "## Table 2 — test accuracy (%)", ""]
    lines += _table2_md(data.nets)
    lines += ["", "## Claims of the paper, checked", ""]
    lines += [
        "Mean constraint security over the measured ε values (PGD attack of the paper, "
        "δ = 10, L = 10, η = 0.52) compared between networks.",
        "",
        "| claim | dataset | statement | verdict |",
        "|---|---|---|---|",
    ]
    for c in data.claims:
        lines.append(f"| {c.name} | {c.dataset} | {c.statement} | **{c.verdict}** |")
    lines += [""]
    for c in data.claims:
        if c.evidence:
            lines.append(f"- **{c.name} ({c.dataset})**: " + "; ".join(c.evidence))
    lines += ["", "## Certified satisfaction next to security and accuracy", ""]
    lines += _certified_md(data.certified, {n.spec.key: n.spec.label for n in data.nets})
    lines += ["", "## Figures", ""]
    for caption, path in pictures:
        lines += [f"![{caption}](figures/{path.name})", "", f"*{caption}*", ""]
    return "\n".join(lines) + "\n"


def _measured_s(data: ReportInput) -> float:
    return sum(r.time_s for r in data.curves) + sum(r.time_s for r in data.certified)


def _table2_md(nets: Sequence[TrainedNet]) -> list[str]:
    datasets = list(dict.fromkeys(n.dataset for n in nets))
    keys = list(dict.fromkeys(n.spec.key for n in nets))
    labels = {n.spec.key: n.spec.label for n in nets}
    head = "| regime | " + " | ".join(f"{d} (ours) | {d} (paper)" for d in datasets) + " |"
    out = [head, "|---|" + "---|---|" * len(datasets)]
    by = {(n.dataset, n.spec.key): n for n in nets}
    for k in keys:
        cells = []
        for d in datasets:
            n = by.get((d, k))
            paper = PAPER_ACCURACY.get(d, {}).get(k)
            cells.append("" if n is None else f"{100 * n.test_accuracy:.1f}")
            cells.append("—" if paper is None else f"{paper:.1f}")
        out.append(f"| {labels[k]} | " + " | ".join(cells) + " |")
    return out


def _certified_summary(rows: Sequence[Row]) -> list[str]:
    """What the exact verdicts add to the empirical metrics, in a few numbers."""
    cells = [
        (r, sat, r.security)
        for r in rows
        if (sat := r.satisfaction) is not None and r.security is not None
    ]
    if not cells:
        return []
    decided = sum((r.holds or 0) + (r.violated or 0) for r, _, _ in cells)
    total = sum(r.points for r, _, _ in cells)
    missed = [(r, sec - sat[1]) for r, sat, sec in cells if sec - sat[1] > 1e-9]
    acc_gap = [r.accuracy - sat[0] for r, sat, _ in cells if r.accuracy is not None]
    lines = [
        "",
        f"- decided exactly: {decided} of {total} point queries "
        f"({100 * decided / max(total, 1):.1f}%) in {len(cells)} cells;",
        f"- security overstates satisfaction (PGD missed a violation the solver found) in "
        f"{len(missed)} of {len(cells)} cells"
        + (
            ": "
            + ", ".join(
                f"{r.dataset} {r.regime} {r.prop.upper()} ε={r.eps:g} (+{gap:.2f})"
                for r, gap in missed
            )
            if missed
            else ""
        )
        + ";",
    ]
    if acc_gap:
        worst = max(acc_gap)
        lines.append(
            f"- accuracy (uniform sampling) overstates certified satisfaction by "
            f"{sum(acc_gap) / len(acc_gap):.3f} on average and by up to {worst:.3f}."
        )
    return lines


def _certified_md(rows: Sequence[Row], labels: dict[str, str]) -> list[str]:
    if not rows:
        return ["(not measured)"]
    out = [
        "Satisfaction is exact where every point is decided; with unknowns it is the interval "
        "[holds, holds + unknown] / points. Security ≥ satisfaction always (a PGD violation is "
        "a replayed counterexample); the gap is what the attack misses or the verifier cannot "
        "decide.",
        "",
    ]
    out += _certified_summary(rows)
    out += [
        "",
        "| dataset | regime | property | ε | points | holds / violated / unknown | "
        "satisfaction | security | accuracy | decided by |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sat = r.satisfaction
        sat_text = (
            ""
            if sat is None
            else (f"{sat[0]:.3f}" if sat[0] == sat[1] else f"[{sat[0]:.3f}, {sat[1]:.3f}]")
        )
        stages = ", ".join(f"{k} {v}" for k, v in sorted(r.stages.items()))
        out.append(
            f"| {r.dataset} | {labels.get(r.regime, r.regime)} | {r.prop.upper()} | {r.eps:g} | "
            f"{r.points} | {r.holds} / {r.violated} / {r.unknown} | {sat_text} | "
            f"{_num(r.security)} | {_num(r.accuracy)} | {stages} |"
        )
    return out
