"""VNN-LIB export: our own reader reads back the same query, and the answers agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from robustprop.properties import Domain, make_property
from robustprop.properties.errors import InputError
from robustprop.verify.cli.main import cli
from robustprop.verify.formats.vnnlib import parse_vnnlib
from robustprop.verify.formats.vnnlib_write import vnnlib_text, write_vnnlib
from robustprop.verify.run.vnnlib_check import check_vnnlib

NET = Path(__file__).parent / "golden" / "golden.onnx"
CENTER = np.array([0.8, 0.2])
Y = np.array([6.0, 0.0, 0.5])


@pytest.mark.parametrize(("name", "params"), [("sr", {"delta": 1.5}), ("cr", {"eps": 0.35})])
def test_round_trip(name: str, params: dict[str, float]) -> None:
    negation = make_property(name, **params).negation(CENTER, Y, 0, Domain())
    back = parse_vnnlib(vnnlib_text(negation), 2, 3).negation
    assert back is not None
    assert len(back.disjuncts) == len(negation.disjuncts)
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = rng.random(2)
        y = rng.normal(size=3) * 5
        assert back.is_satisfied_by(x, y) == negation.is_satisfied_by(x, y)


def test_exported_file_is_decided_like_the_run(tmp_path: Path) -> None:
    spec = tmp_path / "cr.vnnlib"
    write_vnnlib(make_property("cr", eps=0.35).negation(CENTER, Y, 0, Domain()), spec)
    assert check_vnnlib(NET, spec, timeout_s=20, isolate=False).status == "sat"
    write_vnnlib(make_property("cr", eps=0.1).negation(CENTER, Y, 0, Domain()), spec)
    assert check_vnnlib(NET, spec, timeout_s=20, isolate=False).status == "unsat"


@pytest.mark.parametrize("name", ["lr", "scr"])
def test_non_linear_queries_are_refused_with_a_reason(name: str) -> None:
    with pytest.raises(InputError, match=r"no VNN-LIB 1\.0 form"):
        vnnlib_text(make_property(name).negation(CENTER, Y, 0, Domain()))


def test_verify_run_exports_vnnlib_instances(tmp_path: Path) -> None:
    data = Path(__file__).parent / "golden" / "golden.npz"
    out = tmp_path / "vnnlib"
    args = ["run", "--property", "cr", "--eps", "0.35", "--net", str(NET), "--data", str(data)]
    result = CliRunner().invoke(
        cli, [*args, "--points", "1", "--no-cache", "--no-progress", "--export-vnnlib", str(out)]
    )
    assert result.exit_code == 0, result.output
    onnx_path, spec, timeout = (out / "instances.csv").read_text().strip().split(",")
    assert float(timeout) > 0 and not Path(onnx_path).is_absolute()
    assert (out / onnx_path).samefile(NET)
    assert check_vnnlib(NET, out / spec, timeout_s=20, isolate=False).status == "sat"


def test_verify_run_refuses_vnnlib_export_for_lr(tmp_path: Path) -> None:
    args = ["run", "--property", "lr", "--net", str(NET), "--export-vnnlib", str(tmp_path / "v")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "no VNN-LIB 1.0 form" in result.output
