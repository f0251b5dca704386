"""``--strategy staged`` against ``--strategy plain``: same verdicts, stages recorded; the
batched attack."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from robustprop.properties import Domain, PGDConfig, make_property
from robustprop.verify.cli.main import cli
from robustprop.verify.engine.attack import batched_attack
from robustprop.verify.engine.network import network_from_bytes
from robustprop.verify.engine.torch_net import to_torch
from tests.verify.tiny_onnx import mlp_bytes


def _layers(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    sizes = (6, 30, 24, 4)  # 58 ReLU/Clip neurons: beyond Z3, so auto is the portfolio
    return [
        (
            rng.normal(size=(sizes[k + 1], sizes[k])) * 1.5 / np.sqrt(sizes[k]),
            rng.normal(size=sizes[k + 1]) * 0.2,
        )
        for k in range(3)
    ]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("staged")
    net = folder / "net.onnx"
    net.write_bytes(mlp_bytes(_layers(0), clip=(-100.0, 100.0)))
    rng = np.random.default_rng(1)
    data = folder / "points.npz"
    np.savez(data, x=rng.random((6, 6)).astype(np.float32), y=rng.integers(0, 4, 6))
    return net, data


def _run(
    model: tuple[Path, Path], tmp: Path, prop: str, eps: str, strategy: str
) -> dict[str, object]:
    net, data = model
    out = tmp / f"{prop}-{strategy}.json"
    args = ["run", "--property", prop, "--net", str(net), "--data", str(data), "--points", "6"]
    args += ["--eps", eps, "--metrics", "satisfaction", "--timeout", "20", "--no-cache"]
    args += ["--strategy", strategy, "--json", str(out), "--no-progress"]
    if prop == "sr":
        args += ["--delta", "0.6"]
    if prop == "lr":
        args += ["--lipschitz", "3"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    doc: dict[str, object] = json.loads(out.read_text())
    return doc


@pytest.mark.parametrize(
    ("prop", "eps", "reached"),
    [
        ("cr", "0.08", {"bounds", "attack"}),
        ("sr", "0.1", {"bounds", "bab"}),  # branch and bound closes what CROWN leaves
        ("lr", "0.05", {"attack", "solver"}),
    ],
)
def test_staged_and_plain_agree(
    model: tuple[Path, Path], tmp_path: Path, prop: str, eps: str, reached: set[str]
) -> None:
    staged = _run(model, tmp_path, prop, eps, "staged")
    plain = _run(model, tmp_path, prop, eps, "plain")
    assert plain["backend"] == "marabou" and staged["backend"] == "portfolio"
    s_points, p_points = staged["points"], plain["points"]
    assert isinstance(s_points, list) and isinstance(p_points, list)
    for s, p in zip(s_points, p_points, strict=True):
        assert {s["verdict"], p["verdict"]} != {"holds", "violated"}, (s, p)
        assert p["stage"] in ("solver", "none")
        if s["verdict"] == "violated":
            assert "witness" in s
    summary = staged["summary"]
    assert isinstance(summary, dict)
    assert summary["invariant_breaches"] == []
    stages = summary["decided_by_stage"]
    assert set(stages) <= {"center", "attack", "bounds", "bab", "solver"}
    assert reached <= set(stages), stages
    assert sum(stages.values()) == 6  # staged decides every point here, like plain
    assert all(p["verdict"] != "unknown" for p in p_points)


def test_batched_attack_stays_in_the_region_and_finds_cr_violations() -> None:
    net = network_from_bytes(mlp_bytes(_layers(0)), check_points=0)
    model = to_torch(net)
    x = torch.from_numpy(np.random.default_rng(2).random((8, 6))).float()
    prop = make_property("cr", eps=0.3)
    with torch.no_grad():
        refs = prop.references(model(x))
    gen = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many tiny ops: one thread is fastest on a busy machine
    try:
        found = batched_attack(prop, model, x, refs, Domain(), PGDConfig.strong(), gen)
    finally:
        torch.set_num_threads(threads)
    assert torch.all((found.x - x).abs() <= 0.3 + 1e-6)
    assert torch.all((found.x >= 0) & (found.x <= 1))
    with torch.no_grad():
        margin = prop.margin(found.x, model(found.x), x, refs)
    assert torch.allclose(margin, found.value)
    assert int(prop.violated(found.value).sum()) >= 2


def test_vnnlib_strategies(tmp_path: Path) -> None:
    net = tmp_path / "net.onnx"
    net.write_bytes(mlp_bytes(_layers(0), clip=(-100.0, 100.0)))
    spec = tmp_path / "p.vnnlib"
    decls = "".join(f"(declare-const X_{i} Real)\n" for i in range(6))
    decls += "".join(f"(declare-const Y_{j} Real)\n" for j in range(4))
    box = "".join(f"(assert (>= X_{i} 0.4))\n(assert (<= X_{i} 0.45))\n" for i in range(6))
    spec.write_text(decls + box + "(assert (>= Y_0 50.0))\n")
    # plain: no bound stage, but the interval bounds screen every query before the solver
    # (robustprop.verify.engine.screen), and they refute this one
    for strategy, reason in (("staged", "bound propagation"), ("plain", "output bounds refute")):
        result = CliRunner().invoke(
            cli, ["vnnlib", "--net", str(net), "--spec", str(spec), "--strategy", strategy]
        )
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[0] == "unsat"
        assert reason in result.output
