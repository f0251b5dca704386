"""One installed namespace: ``robustprop`` and nothing else, immune to a user's own folders."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERIFY = Path(sys.executable).with_name("verify")

SCRIPT = """
import torch
import robustprop
from robustprop import CR
from robustprop.training.data import load_dataset

data = load_dataset("fashion-mnist-slice", "test")
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(784, 8), torch.nn.ReLU(), torch.nn.Linear(8, 10))
model = robustprop.load(net, example_input=torch.zeros(1, 784))
result = robustprop.check(model, CR(eps=0.001), data.x[:2], data.y[:2],
                          metrics=("satisfaction",), timeout=10)
print("decided", result.summary.decided)
import robustprop.training, robustprop.verify, robustprop.properties, robustprop.export
for module in (robustprop.training, robustprop.verify, robustprop.properties, robustprop.export):
    assert "shadow" not in module.__file__, module.__file__
print("ok")
"""


@pytest.fixture
def shadowed(tmp_path: Path) -> Path:
    """A user's project whose own folders have the names of ours."""
    for name in ("training", "verify", "properties", "export"):
        folder = tmp_path / "shadow" / name
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text(f"raise ImportError('the user\\'s own {name}')\n")
        (folder / "slices").mkdir()
    return tmp_path / "shadow"


def test_user_folders_named_like_ours_change_nothing(shadowed: Path) -> None:
    script = shadowed / "analysis.py"
    script.write_text(SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script)], cwd=shadowed, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "ok"
    assert "decided 2" in out.stdout


def test_cli_and_python_m_robustprop_work_beside_user_folders(shadowed: Path) -> None:
    for cmd in ([str(VERIFY), "--help"], [sys.executable, "-m", "robustprop", "--help"]):
        out = subprocess.run(cmd, cwd=shadowed, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "vnnlib" in out.stdout and "run" in out.stdout


def test_python_m_robustprop_is_the_verify_command() -> None:
    direct = subprocess.run([str(VERIFY), "--version"], capture_output=True, text=True)
    module = subprocess.run(
        [sys.executable, "-m", "robustprop", "--version"], capture_output=True, text=True
    )
    assert direct.returncode == module.returncode == 0
    assert direct.stdout == module.stdout


def test_the_wheel_installs_one_top_level_package(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("robustprop-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"robustprop"}
    for module in (
        "robustprop/verify/engine/bounds.py",
        "robustprop/properties/lr.py",
        "robustprop/training/slices/fashion_mnist_slice.npz",
        "robustprop/api.py",
    ):
        assert module in names
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)
