"""The example CI workflows and the composite action (``action.yml``) are valid and they run.

The structural tests read the YAML files as GitHub does (``on`` parses as ``True`` in YAML 1.1)
and check what made the old workflow fail in the repository it was written for: setup-python's
pip cache with nothing to key it on, a placeholder install line, and a torch that pip would
swap for a CUDA build. The slow test builds robustprop's wheel, makes a fresh virtual
environment and runs the ``run:`` scripts taken from the YAML files themselves (install, gate,
report) on a small model, so a workflow that drifts from the tool fails here.

Nothing is downloaded: pip reads this machine's local package indexes, torch comes from the
local CPU wheel, and the one dependency the local indexes lack (maraboupy) is repacked from
the development environment into a wheel.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "ci" / "robustness-gate.yml"
ACTION_WORKFLOW = ROOT / "examples" / "ci" / "robustness-gate-action.yml"
ACTION = ROOT / "action.yml"
CORPUS = Path(__file__).resolve().parent / "corpus"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: Where the workflow file is meant to be copied; its pip cache is keyed on it.
WORKFLOW_PATH = ".github/workflows/robustness-gate.yml"
USES = re.compile(r"[\w<>.-]+/[\w.-]+(/[\w.-]+)*@[\w<>.-]+")  # owner/repo[/path]@ref
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.S)


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), path
    return doc


def _project() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        project: dict[str, Any] = tomllib.load(handle)["project"]
    return project


def _torch_cap() -> str:
    """The upper bound pyproject.toml puts on torch (``<=X``)."""
    (spec,) = [d for d in _project()["dependencies"] if re.match(r"torch\b", d)]
    match = re.search(r"<=\s*([\w.]+)", spec)
    assert match, f"pyproject.toml no longer caps torch: {spec}"
    return match.group(1)


def _wheel_name() -> str:
    return f"robustprop-{_project()['version']}-py3-none-any.whl"


def _steps(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for job in doc["jobs"].values():
        yield from job["steps"]


def _step(steps: Iterator[dict[str, Any]] | list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [s for s in steps if s.get("name", "").startswith(name)]
    assert len(found) == 1, f"expected one step named {name!r}, found {len(found)}"
    return found[0]


def _expand(text: str, context: Mapping[str, str]) -> str:
    """``text`` with every ``${{ expr }}`` replaced from ``context`` (unknown: an error)."""

    def value(match: re.Match[str]) -> str:
        expr = match.group(1)
        assert expr in context, f"the test cannot evaluate ${{{{ {expr} }}}}"
        return context[expr]

    return EXPRESSION.sub(value, text)


# ---- structure ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [WORKFLOW, ACTION_WORKFLOW], ids=lambda p: p.name)
def test_workflow_structure(path: Path) -> None:
    doc = _load(path)
    assert "on" not in doc and True in doc, "YAML 1.1 reads the key on: as True"
    triggers = doc[True]
    assert {"pull_request", "push", "workflow_dispatch"} <= set(triggers)
    assert WORKFLOW_PATH in triggers["pull_request"]["paths"]
    assert doc["permissions"]["contents"] == "read"
    assert set(doc["jobs"]) == {"gate"}
    job = doc["jobs"]["gate"]
    assert job["runs-on"] == "ubuntu-latest" and job["timeout-minutes"] > 0
    for step in job["steps"]:
        assert ("uses" in step) != ("run" in step), step
        assert set(step) <= {"name", "id", "if", "uses", "with", "run", "env", "shell"}, step
        if "uses" in step:
            assert re.fullmatch(r"[\w<>.-]+/[\w.-]+(/[\w.-]+)*@[\w<>.-]+", step["uses"]), step[
                "uses"
            ]
            assert isinstance(step.get("with", {}), dict)
    checkout = job["steps"][0]
    assert checkout["uses"] == "actions/checkout@v4" and checkout["with"]["lfs"] is True
    assert "your-org" not in path.read_text(encoding="utf-8")


def test_pip_cache_is_keyed_on_a_file_that_exists_in_the_users_repository() -> None:
    """setup-python's ``cache: pip`` stops when no requirements file or pyproject is found."""
    (setup,) = [s for s in _steps(_load(WORKFLOW)) if s.get("uses", "").startswith("actions/setup")]
    assert setup["uses"] == "actions/setup-python@v5"
    assert setup["with"]["cache"] == "pip"
    assert setup["with"]["cache-dependency-path"] == WORKFLOW_PATH
    assert setup["with"]["python-version"] == "3.11"


def test_torch_is_the_packages_cap_from_the_cpu_index() -> None:
    cap = _torch_cap()
    workflow = _load(WORKFLOW)
    assert workflow["env"]["TORCH"] == f"torch=={cap}"
    install = _step(_steps(workflow), "Install robustprop")["run"]
    assert f'python -m pip install "$TORCH" --index-url {CPU_INDEX}' in install
    # torch is installed before robustprop, so pip does not pick a torch of its own
    assert install.index('"$TORCH"') < install.index('"$ROBUSTPROP"')
    action = _load(ACTION)
    assert action["inputs"]["torch"]["default"] == f"torch=={cap}"
    assert action["inputs"]["torch-index-url"]["default"] == CPU_INDEX


def test_robustprop_comes_from_its_own_wheel() -> None:
    assert _load(WORKFLOW)["env"]["ROBUSTPROP"] == f"ci/{_wheel_name()}"
    assert f"ci/{_wheel_name()}" in (ROOT / "examples" / "README.md").read_text(encoding="utf-8")
    action = _load(ACTION)
    assert action["inputs"]["robustprop"]["default"] == ""
    install = _step(action["runs"]["steps"], "Install robustprop")
    assert install["env"]["RP_ACTION_PATH"] == "${{ github.action_path }}"
    assert 'pip install "${RP_SOURCE:-$RP_ACTION_PATH}"' in install["run"]


def test_action_structure() -> None:
    action = _load(ACTION)
    assert action["runs"]["using"] == "composite"
    inputs, steps = action["inputs"], action["runs"]["steps"]
    for name, spec in inputs.items():
        assert spec.get("description"), name
        assert spec.get("required", False) == ("default" not in spec), name
    assert [n for n, s in inputs.items() if s.get("required")] == ["model"]
    ids = {s["id"] for s in steps if "id" in s}
    for step in steps:
        assert ("uses" in step) != ("run" in step), step
        if "run" in step:
            assert step["shell"] == "bash", f"a composite step needs shell: {step.get('name')}"
    text = ACTION.read_text(encoding="utf-8")
    for expr in EXPRESSION.findall(text):
        for name in re.findall(r"\binputs\.([\w-]+)", expr):
            assert name in inputs, f"action.yml uses an undeclared input {name!r}"
        for name in re.findall(r"\bsteps\.([\w-]+)\.", expr):
            assert name in ids, f"action.yml refers to an unknown step id {name!r}"
    used = set(re.findall(r"\binputs\.([\w-]+)", text))
    assert used == set(inputs), f"inputs declared but never used: {set(inputs) - used}"
    assert set(action["outputs"]) == {"json", "junit", "report", "exit-code"}
    for spec in action["outputs"].values():
        assert EXPRESSION.fullmatch(spec["value"]), spec


def test_the_example_uses_the_action_with_its_inputs() -> None:
    inputs = _load(ACTION)["inputs"]
    (step,) = [s for s in _steps(_load(ACTION_WORKFLOW)) if "robustprop@" in s.get("uses", "")]
    assert step["uses"] == "<owner>/robustprop@<ref>"
    assert set(step["with"]) <= set(inputs)
    assert {n for n, s in inputs.items() if s.get("required")} <= set(step["with"])


# ---- running it ---------------------------------------------------------------------------

LOCAL_INDEXES = (Path("/opt/pypi/simple"), Path("/opt/pypi-more/simple"))
LOCAL_WHEELS = Path("/opt/wheels")


def _local_torch() -> Path | None:
    found = sorted(LOCAL_WHEELS.glob(f"torch-{_torch_cap()}+cpu-*.whl"))
    return found[0] if found else None


def _repack(dist: str, into: Path) -> Path:
    """A wheel of the installed distribution ``dist``, from its RECORD (what its wheel held)."""
    info = metadata.distribution(dist)
    files = [f for f in info.files or () if "__pycache__" not in f.parts]
    wheel_meta = next(f for f in files if f.name == "WHEEL").read_text()
    tags = [line.split(": ", 1)[1] for line in wheel_meta.splitlines() if line.startswith("Tag:")]
    name = f"{info.metadata['Name']}-{info.version}-{tags[0]}.whl"
    path = into / name
    record_name = next(str(f) for f in files if f.name == "RECORD")
    rows = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for entry in files:
            if str(entry) == record_name or ".." in entry.parts:
                continue
            data = Path(str(entry.locate())).read_bytes()
            wheel.writestr(str(entry), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            rows.append([str(entry), f"sha256={digest.decode()}", str(len(data))])
        rows.append([record_name, "", ""])
        lines: list[str] = []
        csv.writer(_Lines(lines), lineterminator="\n").writerows(rows)
        wheel.writestr(record_name, "".join(lines))
    return path


class _Lines:
    def __init__(self, out: list[str]) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.append(text)


def _bash(script: str, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """A ``run:`` script as GitHub runs it with ``shell: bash``."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=1200,
    )


class Runner:
    """A workspace, a fresh virtual environment on PATH, and the runner's variables."""

    def __init__(self, base: Path) -> None:
        self.workspace = base / "workspace"
        self.temp = base / "runner-temp"
        self.workspace.mkdir()
        self.temp.mkdir()
        self.outputs = base / "github-output"
        self.summary = base / "step-summary"
        venv = base / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        links = base / "links"
        links.mkdir()
        _repack("maraboupy", links)
        torch_index = base / "torch-index" / "torch"
        torch_index.mkdir(parents=True)
        wheel = _local_torch()
        assert wheel is not None
        (torch_index / "index.html").write_text(
            f'<html><body><a href="{wheel.as_uri()}">{wheel.name}</a></body></html>\n'
        )
        self.torch_index = torch_index.parent.as_uri()
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
        self.env = {
            **keep,
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "VIRTUAL_ENV": str(venv),
            # the workflow's --index-url replaces PIP_INDEX_URL only: torch's own dependencies
            # (which PyTorch's CPU index also serves) come from the extra indexes
            "PIP_INDEX_URL": LOCAL_INDEXES[0].as_uri(),
            "PIP_EXTRA_INDEX_URL": " ".join(p.as_uri() for p in LOCAL_INDEXES),
            "PIP_FIND_LINKS": str(links),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_OUTPUT": str(self.outputs),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "CI": "true",
        }

    def run(self, script: str, env: Mapping[str, str] = {}) -> subprocess.CompletedProcess[str]:
        return _bash(script, self.workspace, {**self.env, **env})

    def step_outputs(self) -> dict[str, str]:
        lines = self.outputs.read_text().splitlines() if self.outputs.exists() else []
        return dict(line.split("=", 1) for line in lines)


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    if not all(p.is_dir() for p in LOCAL_INDEXES) or _local_torch() is None:
        pytest.skip("needs the local package indexes and torch wheel of the dev machine")
    base = tmp_path_factory.mktemp("ci")
    made = Runner(base)
    (made.workspace / "ci").mkdir()
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", str(ROOT), "-w", "ci", "-q"],
        cwd=made.workspace,
        env=made.env,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    assert (made.workspace / "ci" / _wheel_name()).is_file()
    # the model and data in the places the workflow names
    shutil.copy(CORPUS / "ok.onnx", made.workspace / "model.onnx")
    (made.workspace / "data").mkdir()
    shutil.copy(CORPUS / "ok.npz", made.workspace / "data" / "test.npz")
    return made


def _junit_counts(path: Path) -> tuple[int, int]:
    root = ET.parse(path).getroot()
    return int(root.get("tests", -1)), int(root.get("failures", -1))


@pytest.mark.slow
def test_the_workflow_installs_and_gates(runner: Runner) -> None:
    workflow = _load(WORKFLOW)
    steps = list(_steps(workflow))
    env = {k: str(v) for k, v in workflow["env"].items()}
    install = _step(steps, "Install robustprop")["run"]
    assert install.count(CPU_INDEX) == 1
    done = runner.run(install.replace(CPU_INDEX, runner.torch_index), env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"verify, version {_project()['version']}" in done.stdout
    check = runner.run('python -c "import torch; print(torch.__version__)"')
    assert check.stdout.strip() == f"{_torch_cap()}+cpu"

    # the small net violates LR with L=10 at ε=0.1 on all three points: the gate fails (exit 1)
    gate = runner.run(_step(steps, "Robustness gate")["run"], env)
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert "::error title=Robustness gate failed::" in gate.stdout
    out = runner.workspace / "robustness"
    document = json.loads((out / "lr.json").read_text())
    assert document["property"]["name"] == "lr"
    assert document["summary"]["violated"] == 3 and document["summary"]["holds"] == 0
    assert _junit_counts(out / "results.xml") == (3, 3)
    assert (runner.temp / "robustprop" / "verdicts.sqlite").is_file()

    report = runner.run(_step(steps, "Report")["run"], env)
    assert report.returncode == 0, report.stderr
    assert (out / "report.md").is_file() and runner.summary.read_text().strip()


@pytest.mark.slow
def test_the_action_installs_and_gates(runner: Runner) -> None:
    action = _load(ACTION)
    inputs = {f"inputs.{n}": str(s.get("default", "")) for n, s in action["inputs"].items()}
    given = {
        "model": "model.onnx",
        "data": "data/test.npz",
        "eps": "0.01",
        "lipschitz": "100",
        "output-dir": "gate-out",
        "torch-index-url": runner.torch_index,
        "jobs": "1",
    }
    inputs.update({f"inputs.{k}": v for k, v in given.items()})
    context = {**inputs, "github.action_path": str(ROOT)}
    steps = action["runs"]["steps"]
    assert steps[0]["uses"] == "actions/setup-python@v5"
    assert inputs["inputs.report"] == "true"  # so the Report step runs (its if: holds)
    for step in steps[1:]:
        refs = _step_refs(runner)
        env = {k: _expand(str(v), {**context, **refs}) for k, v in step["env"].items()}
        done = runner.run(step["run"], env)
        assert done.returncode == 0, f"{step['name']}: {done.stdout}{done.stderr}"
    outputs = runner.step_outputs()
    assert outputs["exit-code"] == "0", outputs
    assert outputs["json"] == "gate-out/lr.json" and outputs["junit"] == "gate-out/results.xml"
    assert _junit_counts(runner.workspace / outputs["junit"]) == (3, 0)
    assert outputs["report"] == "gate-out/report.md"
    assert (runner.workspace / outputs["report"]).is_file()

    # a failing gate: the step fails with exit 1, after writing its outputs
    runner.outputs.unlink()
    failing = {**context, "inputs.eps": "0.1", "inputs.lipschitz": "10"}
    gate = _step(steps, "Robustness gate")
    env = {k: _expand(str(v), failing) for k, v in gate["env"].items()}
    done = runner.run(gate["run"], env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "::error title=Robustness gate failed::" in done.stdout
    assert runner.step_outputs()["exit-code"] == "1"
    assert _junit_counts(runner.workspace / "gate-out" / "results.xml") == (3, 3)


def _step_refs(runner: Runner) -> dict[str, str]:
    """``steps.<id>.outputs.<name>`` from what the steps so far wrote to $GITHUB_OUTPUT."""
    return {f"steps.gate.outputs.{k}": v for k, v in runner.step_outputs().items()}
