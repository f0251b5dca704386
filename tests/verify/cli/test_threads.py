"""``--threads N`` of ``verify train`` and ``verify experiment`` sets torch's intra-op threads of
the process that trains (torch's ``set_num_threads``); without it torch keeps its own default.

The runs are real and in-process (CliRunner), so the setting can be read back from torch in
the process that trained; the test restores the thread count it found.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from robustprop.verify.cli.main import cli

TRAIN = ["train", "--data", "fashion-mnist-slice", "--regime", "baseline", "--epochs", "1",
         "--train-limit", "64", "--device", "cpu", "--no-progress"]  # fmt: skip


@pytest.fixture(autouse=True)
def two_threads() -> Iterator[None]:
    """Start every test at 2 threads (not what the tests ask for), restore the count after."""
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def test_train_threads_reaches_torch(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [*TRAIN, "--threads", "1", "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.onnx").is_file()
    assert torch.get_num_threads() == 1


def test_train_without_threads_leaves_torch_alone(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [*TRAIN, "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == 2


def test_experiment_threads_reaches_torch_with_quick(tmp_path: Path) -> None:
    args = [
        "experiment", "--quick", "--train-only", "--regimes", "baseline", "--threads", "1",
        "--work-dir", str(tmp_path / "work"), "-o", str(tmp_path / "out"), "--no-progress",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "networks trained" in result.output
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("command", [TRAIN[:1], ["experiment"]])
@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_threads_must_be_a_positive_whole_number(command: list[str], value: str) -> None:
    result = CliRunner().invoke(cli, [*command, "--threads", value])
    assert result.exit_code == 2
    assert "--threads" in result.output
    assert torch.get_num_threads() == 2
