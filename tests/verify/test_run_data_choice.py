"""``verify run`` without ``--data`` takes the data set named in the model's metadata, and
says so: one line on stderr and ``data.from_metadata`` in the JSON (it used to be silent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from robustprop.verify.cli.main import cli

GOLDEN = Path(__file__).parent / "golden"


def _run(tmp_path: Path, *extra: str) -> tuple[str, dict[str, object]]:
    out = tmp_path / "r.json"
    args = [
        "run", "--property", "cr", "--eps", "0.1", "--net", str(GOLDEN / "golden.onnx"),
        "--points", "1", "--metrics", "satisfaction", "--backend", "z3", "--no-progress",
        "--no-cache", "--json", str(out), *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return result.stderr, json.loads(out.read_text())


def test_data_from_the_metadata_is_announced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(GOLDEN)  # the golden net's metadata names golden.npz
    stderr, doc = _run(tmp_path)
    assert stderr.splitlines() == ["data: golden.npz (from the model's metadata; --data to choose)"]
    assert doc["data"] == {
        "source": "golden.npz",
        "split": "test",
        "points": 1,
        "seed": None,
        "from_metadata": True,
    }


def test_data_given_is_not_announced(tmp_path: Path) -> None:
    stderr, doc = _run(tmp_path, "--data", str(GOLDEN / "golden.npz"))
    assert stderr == ""
    assert "from_metadata" not in doc["data"]  # type: ignore[operator]
