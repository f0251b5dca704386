"""What ``verify run`` prints for one run: the metrics table, and what came from the store."""

from __future__ import annotations

from pathlib import Path

import click

from robustprop.verify.formats.text import printable
from robustprop.verify.run.result import RunResult
from robustprop.verify.run.reuse import StoreReport

__all__ = ["print_summary", "store_rows"]


def print_summary(result: RunResult, net: Path, *, gated: bool, err: bool = False) -> None:
    """The run's table on stdout (stderr with ``err``, when a document goes to stdout): counts,
    satisfaction, stages, security, accuracy, the store's part (reused, trusted, re-decided),
    time."""
    prop, stats = result.config.prop, result.summary
    shown = ", ".join(f"{k}={v}" for k, v in prop.params().items())
    click.echo(
        f"{prop.name.upper()} ({shown}) on {printable(str(net))}, {stats.points} points, "
        f"backend {result.backend}",
        err=err,
    )
    rows: list[tuple[str, str]] = []
    if stats.satisfaction is not None:
        lo, hi = stats.satisfaction
        rows.append(
            ("holds / violated / unknown", f"{stats.holds} / {stats.violated} / {stats.unknown}")
        )
        interval = f"{lo:.3f}" if lo == hi else f"[{lo:.3f}, {hi:.3f}]"
        rows.append(("satisfaction (certified)", interval))
        rows.append(
            (
                "decided by stage",
                ", ".join(f"{k} {v}" for k, v in stats.decided_by_stage.items()) or "-",
            )
        )
    if stats.security is not None:
        rows.append(("security (PGD)", f"{stats.security:.3f}"))
    if stats.accuracy is not None:
        rows.append((f"accuracy ({stats.samples} samples)", f"{stats.accuracy:.3f}"))
    if stats.refuted_but_missed_by_attack:
        rows.append(
            ("refuted by solver, missed by PGD", str(len(stats.refuted_but_missed_by_attack)))
        )
    rows.extend(store_rows(result.store, gated=gated))
    if result.incomplete:
        rows.append(("incomplete", result.incomplete))
    rows.append(("time", f"{stats.time_s:.1f} s"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"  {key.ljust(width)}  {printable(value)}", err=err)


def store_rows(store: StoreReport | None, *, gated: bool) -> list[tuple[str, str]]:
    """What the run took from the store, and on whose word."""
    if store is None:
        return []
    rows: list[tuple[str, str]] = []
    if store.reused:
        detail = f"{store.replayed} witness(es) replayed, {store.unchecked} unchecked"
        rows.append(
            ("reused from the store", f"{store.reused} verdict(s) from {store.path} ({detail})")
        )
    if store.trusted and store.unchecked:
        rows.append(
            ("trusted (--trust-store)", f"{store.unchecked} stored verdict(s) from {store.path}")
        )
    if store.redecided:
        why = "gates rest only on evidence; --trust-store to reuse" if gated else "not reusable"
        rows.append(("re-decided", f"{store.redecided} stored verdict(s) ({why})"))
    if store.contradicted:
        rows.append(
            (
                "contradicted",
                f"{store.contradicted} stored verdict(s) overruled by violations found now",
            )
        )
    if store.unavailable:
        rows.append(("store not used", store.unavailable))
    return rows
