"""The VNN-COMP scripts' shared argument checks (scripts/vnncomp/common.sh, sourced by each):
the usage line and exit 1 on wrong arguments, unreadable files and a missing ``verify``, and
the helper found beside the script's real path when the script is called through a link."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = ROOT / "scripts" / "vnncomp"
GOLDEN = ROOT / "tests" / "verify" / "golden"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is absent")

USAGE = {
    "install_tool.sh": "v1",
    "prepare_instance.sh": "v1 CATEGORY ONNX VNNLIB",
    "run_instance.sh": "v1 CATEGORY ONNX VNNLIB RESULTS_FILE TIMEOUT",
}


def _run(script: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(USAGE))
@pytest.mark.parametrize("args", [(), ("v2", "a", "b", "c", "d", "e"), ("v1", "x", "y")])
def test_wrong_arguments_print_the_usage(name: str, args: tuple[str, ...]) -> None:
    if name == "install_tool.sh" and args == ("v1", "x", "y"):
        args = ("v1", "x")
    done = _run(SCRIPTS / name, *args)
    assert done.returncode == 1
    assert done.stderr == f"usage: {SCRIPTS / name} {USAGE[name]} (got: {' '.join(args)})\n"
    assert done.stdout == ""


def test_prepare_refuses_an_unreadable_file(tmp_path: Path) -> None:
    done = _run(SCRIPTS / "prepare_instance.sh", "v1", "c", str(tmp_path / "no.onnx"), "p")
    assert done.returncode == 1
    assert done.stderr == f"robustprop: cannot read {tmp_path / 'no.onnx'}\n"


def test_prepare_refuses_a_missing_verify(tmp_path: Path) -> None:
    net = str(GOLDEN / "golden.onnx")
    absent = str(tmp_path / "verify")
    done = _run(SCRIPTS / "prepare_instance.sh", "v1", "c", net, net, ROBUSTPROP_VERIFY=absent)
    assert done.returncode == 1
    assert done.stderr == f"robustprop: {absent} not found; run install_tool.sh v1 first\n"


def test_prepare_through_a_link_finds_its_helper(tmp_path: Path) -> None:
    link = tmp_path / "prepare_instance.sh"
    link.symlink_to(SCRIPTS / "prepare_instance.sh")
    net = str(GOLDEN / "golden.onnx")
    verify = str(ROOT / ".venv" / "bin" / "verify")
    done = _run(link, "v1", "test", net, net, ROBUSTPROP_VERIFY=verify)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("robustprop: preparing category 'test'")
