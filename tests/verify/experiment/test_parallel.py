"""``--jobs``: networks measured in a process pool give the rows of a serial run, in order."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from robustprop.verify.experiment.measure import Measure, read_cache
from robustprop.verify.experiment.parallel import NetworkJob, measure_networks

GOLDEN = Path(__file__).parent.parent / "golden"


def _jobs(folder: Path) -> list[NetworkJob]:
    jobs = []
    for regime in ("baseline", "dl2", "third"):
        net = folder / regime / "golden.onnx"
        net.parent.mkdir(parents=True)
        shutil.copy(GOLDEN / "golden.onnx", net)
        jobs.append(
            NetworkJob(
                net=net,
                dataset="golden",
                regime=regime,
                data=str(GOLDEN / "golden.npz"),
                curves=(Measure("sr", 0.1, 1, ("security", "accuracy"), "paper", 10),),
                certified=(
                    Measure("cr", 0.35, 1, ("satisfaction", "security"), "strong", 10, 5.0),
                ),
                lipschitz_eps=(0.1,),
                lipschitz_points=1,
                timeout_s=5.0,
                store=folder / "verdicts.sqlite",
            )
        )
    return jobs


def test_a_pool_gives_the_serial_rows_in_job_order(tmp_path: Path) -> None:
    serial = measure_networks(_jobs(tmp_path / "serial"), 1)
    lines: list[str] = []
    pooled = measure_networks(_jobs(tmp_path / "pooled"), 2, lines.append)
    assert "3 networks, 2 at a time" in lines[0]
    assert [r.curves[0].regime for r in pooled] == ["baseline", "dl2", "third"]
    for a, b in zip(serial, pooled, strict=True):
        assert [replace(r, time_s=0.0) for r in a.curves + a.certified] == [
            replace(r, time_s=0.0) for r in b.curves + b.certified
        ]
        assert [replace(f, time_s=0.0) for f in a.lipschitz] == [
            replace(f, time_s=0.0) for f in b.lipschitz
        ]
        assert b.certified[0].violated == 1  # CR at ε = 0.35 is refuted (by hand)
    for job in _jobs_existing(tmp_path / "pooled"):
        assert len(read_cache(job)) == 3  # curve, certified, LR finding: each cached


def _jobs_existing(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/golden.onnx"))
