"""VNN-COMP's files: gzip-compressed models and specs (a bomb refused), instances.csv and
answer tables, and the result file's text."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from robustprop.properties.errors import InputError
from robustprop.verify.formats.compressed import read_capped
from robustprop.verify.formats.vnncomp import (
    format_witness,
    read_expected,
    read_instances,
    results_text,
)
from robustprop.verify.formats.vnnlib import MAX_FILE_BYTES, read_vnnlib
from robustprop.verify.run.vnnlib_check import read_model
from tests.verify.tiny_onnx import mlp_bytes

SPEC = (
    "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
    "(assert (>= X_0 0))\n(assert (<= X_0 1))\n(assert (>= Y_0 0.5))\n"
)


def test_gzip_spec_and_model_read_like_plain_ones(tmp_path: Path) -> None:
    (tmp_path / "p.vnnlib").write_text(SPEC)
    (tmp_path / "p.vnnlib.gz").write_bytes(gzip.compress(SPEC.encode()))
    plain = read_vnnlib(tmp_path / "p.vnnlib", 1, 1).negation
    packed = read_vnnlib(tmp_path / "p.vnnlib.gz", 1, 1).negation
    assert plain is not None and packed is not None
    assert plain.disjuncts[0].atoms == packed.disjuncts[0].atoms
    onnx = mlp_bytes([(np.ones((1, 1)), np.zeros(1))])
    (tmp_path / "m.onnx.gz").write_bytes(gzip.compress(onnx))
    model = read_model(tmp_path / "m.onnx.gz")
    assert model.data == onnx and model.source.endswith("m.onnx.gz")


def test_gzip_bomb_is_refused_naming_the_cap(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.vnnlib.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        block = b" " * (1 << 20)
        for _ in range(MAX_FILE_BYTES // len(block) + 1):
            out.write(block)
    assert bomb.stat().st_size < 200_000
    with pytest.raises(InputError, match=r"inflates to more than the cap .*MAX_FILE_BYTES"):
        read_vnnlib(bomb, 1, 1)
    (tmp_path / "m.onnx.gz").write_bytes(gzip.compress(b"\x08" * 5000))
    with pytest.raises(InputError, match="inflates to more than the cap of 4096 bytes"):
        read_capped(tmp_path / "m.onnx.gz", 4096, "ONNX model", "CAP")


def test_corrupt_gzip_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "p.vnnlib.gz"
    path.write_bytes(gzip.compress(SPEC.encode())[:-6])
    with pytest.raises(InputError, match="truncated"):
        read_vnnlib(path, 1, 1)
    path.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(InputError, match="not a valid gzip stream"):
        read_vnnlib(path, 1, 1)


def test_instances_paths_are_relative_to_the_csv(tmp_path: Path) -> None:
    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "instances.csv").write_text(
        "onnx/a.onnx.gz,vnnlib/p.vnnlib,116\n\nb.onnx,q.vnnlib,60\n"
    )
    (folder / "truth.csv").write_text("onnx,vnnlib,expected\nonnx/a.onnx.gz,vnnlib/p.vnnlib,sat\n")
    listed = read_instances(folder / "instances.csv", read_expected(folder / "truth.csv"))
    assert [i.onnx for i in listed] == [folder / "onnx/a.onnx.gz", folder / "b.onnx"]
    assert [i.timeout_s for i in listed] == [116.0, 60.0]
    assert [i.expected for i in listed] == ["sat", None]
    assert listed[0].name == "a/p"
    (folder / "bad.csv").write_text("a.onnx,p.vnnlib,nan\n")
    with pytest.raises(InputError, match=r"bad.csv:1: timeout must be a positive number"):
        read_instances(folder / "bad.csv")


def test_results_text() -> None:
    assert results_text("unsat") == "unsat\n"
    assert results_text("timeout") == "timeout\n"
    text = results_text("sat", np.array([0.1, 1 / 3]), np.array([-2.5e-10]))
    assert text == "sat\n((X_0 0.1)\n (X_1 0.3333333333333333)\n (Y_0 -2.5e-10))\n"
    assert format_witness([1.0], [2.0]) == "((X_0 1.0)\n (Y_0 2.0))"
    with pytest.raises(ValueError, match="not a VNN-COMP answer"):
        results_text("holds")
