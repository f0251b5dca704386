"""LR witnesses measured on the golden net, whose Lipschitz constant is known by hand.

golden.onnx (tests/verify/golden/make_golden.py) has ``y0 − 6 = 10·(dx0 − dx1)`` around
x̂ = (0.8, 0.2) at ε = 0.1 and constant other outputs, so every LR witness for L = 10 has a
local slope in (10, 20] and lies within ε of x̂.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from robustprop.verify.experiment.lipschitz import LipschitzFinding, lipschitz_finding
from robustprop.verify.experiment.lipschitz_report import lipschitz_section
from robustprop.verify.experiment.measure import read_cache

GOLDEN = Path(__file__).parent.parent / "golden"


def test_witness_distances_on_the_golden_net(tmp_path: Path) -> None:
    net = tmp_path / "golden.onnx"
    shutil.copy(GOLDEN / "golden.onnx", net)
    data = str(GOLDEN / "golden.npz")
    cache: dict[str, object] = {}
    finding, reused = lipschitz_finding(
        net, "golden", "baseline", 0.1, points=1, data=data, timeout_s=10.0, cache=cache
    )
    assert not reused
    assert (finding.points, finding.violated, finding.holds, finding.unknown) == (1, 1, 0, 0)
    assert finding.lipschitz == 10.0
    assert finding.slope is not None and finding.distance is not None
    assert 10.0 < finding.slope.low <= finding.slope.high <= 20.0 + 1e-6
    assert 0.0 < finding.distance.high <= 0.1 + 1e-9
    assert finding.output_gap is not None and finding.bound is not None
    assert finding.output_gap.low > finding.bound.low  # the witness breaks the bound
    assert 0 <= finding.paper_pgd_of_violated <= finding.paper_pgd <= finding.points
    again, reused = lipschitz_finding(
        net, "golden", "baseline", 0.1, points=1, data=data, timeout_s=10.0, cache=cache
    )
    assert reused and again == finding
    assert LipschitzFinding.from_json(next(iter(cache.values()))) == finding  # type: ignore[arg-type]
    assert read_cache(net) == {}  # the caller writes the cache, not this function


def test_the_section_states_the_numbers(tmp_path: Path) -> None:
    net = tmp_path / "golden.onnx"
    shutil.copy(GOLDEN / "golden.onnx", net)
    finding, _ = lipschitz_finding(
        net,
        "golden",
        "constraint-lr",
        0.1,
        points=1,
        data=str(GOLDEN / "golden.npz"),
        timeout_s=10.0,
    )
    text = "\n".join(lipschitz_section([finding], {"constraint-lr": "Constraint Loss (LR)"}))
    assert "refuted at 1 (100.0%)" in text
    assert "Every network is refuted at every point and every ε." in text
    assert "paper's PGD (50 sign steps of 0.01 from a uniform start)" in text
    assert "our LR-trained network on golden is refuted at 1 of 1" in text
    assert finding.slope is not None and f"{finding.slope.low:.3g}" in text
    assert "| golden | Constraint Loss (LR) | 0.1 | 1 / 1 |" in text
    assert lipschitz_section([], {})[0].startswith("(not measured")
