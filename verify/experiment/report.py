"""The experiment's report: ``report.md`` with CSV tables and PNG figures beside it.

Files written under the output folder:

- ``table2.csv`` — test accuracy per dataset and regime, ours and the paper's;
- ``curves.csv`` — security and accuracy per dataset, regime, attack and ε (E1–E4);
- ``certified.csv`` — satisfaction (holds/violated/unknown), security and accuracy on the
  certified subset, with the stage that decided each verdict;
- ``beyond.csv`` — test accuracy of the regimes beyond the paper (``grid.BEYOND``), if any;
- ``figures/*.{png,pdf,svg}`` — one figure per dataset and attack (all regimes), the E1
  comparison, the bigger-network comparison, and certified vs empirical per property
  (:mod:`robustprop.verify.experiment.figures`);
- ``report.md`` — all of it with the claim-by-claim verdicts in plain words, where the
  paper disagrees with itself, the Lipschitz findings, settings, wall time, hardware;
- ``report.html`` — the same as one self-contained page (figures embedded).
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

from robustprop.verify.experiment.claims import Claim, paper_disagreements, verdict_summary
from robustprop.verify.experiment.deviations import TOLERANCE, table2_deviations
from robustprop.verify.experiment.figures import draw_figures
from robustprop.verify.experiment.grid import PAPER_ACCURACY, TABLE2_NOTES, TrainedNet
from robustprop.verify.experiment.html_page import html_page
from robustprop.verify.experiment.lipschitz import LipschitzFinding
from robustprop.verify.experiment.lipschitz_report import lipschitz_section
from robustprop.verify.experiment.measure import Row
from robustprop.verify.formats.text import code_span, markdown_text

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
    beyond: Sequence[TrainedNet] = ()  # the regimes beyond the paper (not in Table 2)
    lipschitz: Sequence[LipschitzFinding] = ()


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
    if data.beyond:
        _table2_csv(folder / "beyond.csv", data.beyond)
    pictures = draw_figures(figures, data.nets, data.curves, data.certified, data.beyond)
    path = folder / "report.md"
    text = _markdown(data, pictures)
    path.write_text(text)
    (folder / "report.html").write_text(html_page(text, folder))
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
        f"- hardware: {hardware()} (the machine of this invocation: reused networks and "
        "cached measurements may have been made on another, so compare their times with care)",
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
    in_grid = dict.fromkeys(n.dataset for n in data.nets)
    lines += [f"\n*{ds}*: {TABLE2_NOTES[ds]}" for ds in in_grid if ds in TABLE2_NOTES]
    deviations = table2_deviations(data.nets, data.curves)
    if deviations:
        lines += [
            "",
            f"Regimes off the paper by more than ±{TOLERANCE} points relative to their "
            "dataset's baseline, with what this run measured:",
            "",
        ]
        lines += [f"- {d}" for d in deviations]
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
    lines += ["", "### In plain words", ""]
    lines += verdict_summary(data.claims)
    lines += ["", "### Where the paper disagrees with itself", ""]
    datasets = list(dict.fromkeys(n.dataset for n in data.nets))
    lines += [f"- {t}" for t in paper_disagreements(data.curves, datasets, PAPER_ACCURACY)]
    labels = {n.spec.key: n.spec.label for n in [*data.nets, *data.beyond]}
    lines += ["", "## Lipschitz robustness: what the attack finds", ""]
    lines += lipschitz_section(data.lipschitz, labels)
    extra = {n.spec.key for n in data.beyond}
    lines += ["", "## Certified satisfaction next to security and accuracy", ""]
    lines += _certified_md([r for r in data.certified if r.regime not in extra], labels)
    if data.beyond:
        lines += ["", "## Beyond the paper", ""]
        lines += _beyond_md(data.beyond, [r for r in data.certified if r.regime in extra])
    lines += ["", "## Figures", ""]
    for caption, path in pictures:
        stem = f"figures/{path.stem}"
        lines += [
            f"![{caption}](figures/{path.name})",
            "",
            f"*{caption}* (vector: [PDF]({stem}.pdf), [SVG]({stem}.svg))",
            "",
        ]
    return "\n".join(lines) + "\n"


def _beyond_md(nets: Sequence[TrainedNet], rows: Sequence[Row]) -> list[str]:
    """The regimes beyond the paper: accuracy, then every certified cell of each."""
    out = [
        "Regimes the paper did not train (certified or Lipschitz training), measured like "
        "the others: test accuracy, and per property and ε the certified satisfaction, "
        "security (the verifier's PGD) and accuracy (uniform sampling) on the certified "
        "points.",
        "",
        "| dataset | regime | test accuracy (%) | property | ε | holds / violated / unknown "
        "| satisfaction | security | accuracy (sampling) |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for n in nets:
        mine = [r for r in rows if r.dataset == n.dataset and r.regime == n.spec.key]
        head = f"| {n.dataset} | {n.spec.label} | {100 * n.test_accuracy:.1f} |"
        if not mine:
            out.append(head + " — | — | not measured | | | |")
        for r in mine:
            out.append(
                f"{head} {r.prop.upper()} | {r.eps:g} | {r.holds} / {r.violated} / {r.unknown} "
                f"| {_sat_text(r)} | {_num(r.security)} | {_num(r.accuracy)} |"
            )
    return out


def _sat_text(r: Row) -> str:
    sat = r.satisfaction
    if sat is None:
        return ""
    return f"{sat[0]:.3f}" if sat[0] == sat[1] else f"[{sat[0]:.3f}, {sat[1]:.3f}]"


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
        f"({_floor_percent(decided, total)}%) in {len(cells)} cells;",
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
        "| dataset | regime | property | ε | points | holds / violated / unknown | decided | "
        "satisfaction | security | accuracy | decided by |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        sat_text = _sat_text(r)
        stages = ", ".join(f"{k} {v}" for k, v in sorted(r.stages.items()))
        decided = (r.holds or 0) + (r.violated or 0)
        out.append(
            f"| {r.dataset} | {labels.get(r.regime, r.regime)} | {r.prop.upper()} | {r.eps:g} | "
            f"{r.points} | {r.holds} / {r.violated} / {r.unknown} | "
            f"{decided / max(r.points, 1):.2f} | {sat_text} | "
            f"{_num(r.security)} | {_num(r.accuracy)} | {stages} |"
        )
    return out


def _floor_percent(part: int, whole: int) -> str:
    """``100 · part / whole`` with two decimals, rounded down: a share just below a goal
    (22175 of 22400 is 98.996 %) must not print as reaching it (99.00 %)."""
    hundredths = 10_000 * part // max(whole, 1)
    return f"{hundredths // 100}.{hundredths % 100:02d}"
