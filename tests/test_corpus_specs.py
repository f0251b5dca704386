"""Hostile specs and models through ``verify vnnlib`` (the style of tests/test_corpus.py): each
bad input ends in one clear line naming the file and the culprit (token, cap, node) with exit
code 2; a hostile but valid spec gets the right answer with exit code 0.

The inputs are written into a temporary folder by :func:`write_inputs` (no binary files in the
repository): small specs on the 2-input ``tests/corpus/ok.onnx`` and hostile models from
:mod:`tests.verify.hostile_onnx`. (A model with external data is made self-contained by
``verify``'s model reader before the engine sees it; the engine's own refusal of external data
is tested in tests/verify/test_hostile_models.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from robustprop.verify.cli.main import cli
from tests.test_corpus import CORPUS, Case, check_failure
from tests.verify.hostile_onnx import concat_doubling, conv_zero_stride, paper_like


def _spec(*asserts: str, n: int = 2, m: int = 3) -> str:
    lines = [f"(declare-const X_{i} Real)" for i in range(n)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(m)]
    lines += [f"(assert (>= X_{i} 0))\n(assert (<= X_{i} 1))" for i in range(n)]
    return "\n".join([*lines, *asserts]) + "\n"


SPECS: dict[str, str] = {
    "overflow": _spec("(assert (<= Y_0 1e400))"),
    "infinity": _spec("(assert (<= Y_0 inf))"),
    "not_a_number": _spec("(assert (>= Y_0 (- nan)))"),
    "too_deep": _spec("(assert " + "(and " * 200 + "(>= Y_0 0)" + ")" * 200 + ")"),
    "huge_bound": _spec("(assert (<= Y_0 1e17))"),
    "huge_bound_784": _spec("(assert (<= Y_0 1e17))", n=784, m=10),
    "huge_unsat": _spec("(assert (>= Y_0 1e300))"),
    "all_empty": _spec("(assert (or (and (>= X_0 0.9) (<= X_0 0.1) (>= Y_0 1))))"),
}

MODELS: dict[str, Callable[[], bytes]] = {
    "concat_doubling": concat_doubling,
    "conv_zero_stride": conv_zero_stride,
    "paper_like": paper_like,
}


def write_inputs(folder: Path) -> None:
    for name, text in SPECS.items():
        (folder / f"{name}.vnnlib").write_text(text)
    for name, build in MODELS.items():
        (folder / f"{name}.onnx").write_bytes(build())


def vnnlib_args(spec: str, net: str = "ok", *extra: str) -> tuple[str, ...]:
    net_path = f"{CORPUS}/{net}.onnx" if net == "ok" else f"{{o}}/{net}.onnx"
    args = ("vnnlib", "--net", net_path, "--spec", f"{{o}}/{spec}.vnnlib")
    return (*args, "--timeout", "10", *extra)


BAD: dict[str, Case] = {
    "spec_overflow": Case(
        vnnlib_args("overflow"), ("overflow.vnnlib:10:17:", "'1e400'", "float64")
    ),
    "spec_infinity": Case(vnnlib_args("infinity"), ("infinity.vnnlib:10:17:", "'inf'", "finite")),
    "spec_nan": Case(vnnlib_args("not_a_number"), ("not_a_number.vnnlib:10:20:", "'nan'")),
    "spec_too_deep": Case(vnnlib_args("too_deep"), ("too_deep.vnnlib:10:", "MAX_DEPTH")),
    "model_concat": Case(
        vnnlib_args("huge_bound", "concat_doubling"),
        ("concat_doubling.onnx", "Concat", "MAX_TENSOR_VALUES"),
    ),
    "model_zero_stride": Case(
        vnnlib_args("huge_bound", "conv_zero_stride"), ("conv_zero_stride.onnx", "'still'")
    ),
}


def _invoke(args: tuple[str, ...], folder: Path) -> object:
    return CliRunner().invoke(cli, [a.format(o=folder) for a in args])


@pytest.mark.parametrize("name", list(BAD))
def test_hostile_input_is_named(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = _invoke(BAD[name].args, tmp_path)
    check_failure(result, BAD[name])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "net", "answer", "strategy"),
    [
        ("huge_bound_784", "paper_like", "sat", "plain"),
        ("huge_bound_784", "paper_like", "sat", "staged"),
        ("huge_bound", "ok", "sat", "plain"),
        ("huge_unsat", "ok", "unsat", "plain"),
        ("all_empty", "ok", "unsat", "plain"),
    ],
)
def test_hostile_but_valid_spec_is_answered(
    spec: str, net: str, answer: str, strategy: str, tmp_path: Path
) -> None:
    """Before: ``huge_bound_784`` was answered ``unsat`` by Marabou (exit 0, a wrong answer)."""
    write_inputs(tmp_path)
    args = vnnlib_args(spec, net, "--backend", "marabou", "--strategy", strategy, "--no-attack")
    result = _invoke(args, tmp_path)
    # verify vnnlib: 0 whenever an answer was written (VNN-COMP's convention), sat included
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    lines = result.stdout.strip().splitlines()  # type: ignore[attr-defined]
    assert lines and lines[0] == answer, result.stdout  # type: ignore[attr-defined]
