"""Bringing one's own model (issue #15, item 1): the README example, input normalisation, a
final Softmax, the supported-ops list, Git LFS pointers, the assumptions note, and a quiet
float64 replay of convolutional models."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

import robustprop
from robustprop import CR, SR
from robustprop.properties import Domain
from robustprop.properties.errors import InputError
from robustprop.verify.cli.main import cli
from robustprop.verify.engine.network import SUPPORTED_OPS, network_from_bytes
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.run.model import ModelBytes

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus"
MEAN = (0.3, 0.5, 0.7)
STD = (0.2, 0.25, 0.3)


def _readme_block(section: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8").split(f"## {section}\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", text.split("\n## ", 1)[0], re.S)
    assert match, f"the README's {section} section has no python block"
    return match.group(1)


def test_the_readme_bring_your_own_model_example_runs(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(_readme_block("Bring your own model"))
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("satisfaction (")
    assert "its final Softmax is dropped for cr" in out.stderr
    assert "its inputs are taken in [0, 1]" in out.stderr
    assert (tmp_path / "my_model.onnx").is_file()


# -- input normalisation ------------------------------------------------------------------


def _body() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 2, 3, stride=2),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 4),
    ).eval()


class _Normalised(torch.nn.Module):
    """``body((x - mean) / std)``: a model with its normalisation inside the graph."""

    def __init__(self, body: torch.nn.Module) -> None:
        super().__init__()
        self.body = body
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - self.mean) / self.std)


def _folded(body: torch.nn.Sequential) -> torch.nn.Sequential:
    """The same network with the normalisation folded into its first convolution by hand."""
    folded = _body()
    folded.load_state_dict(body.state_dict())
    conv = folded[0]
    assert isinstance(conv, torch.nn.Conv2d) and conv.bias is not None
    mean, std = torch.tensor(MEAN), torch.tensor(STD)
    with torch.no_grad():
        shift = (conv.weight * (mean / std).view(1, 3, 1, 1)).sum(dim=(1, 2, 3))
        conv.weight /= std.view(1, 3, 1, 1)
        conv.bias -= shift
    return folded


def test_normalised_inputs_give_the_verdicts_of_the_folded_net() -> None:
    body = _body()
    example = torch.zeros(1, 3, 6, 6)
    x = torch.rand(6, 3, 6, 6, generator=torch.Generator().manual_seed(1)).numpy()
    flagged = robustprop.load(body, example, input_mean=MEAN, input_std=STD)
    inside = robustprop.load(_Normalised(body), example)
    folded = robustprop.load(_folded(body), example)
    assert flagged.normalization is not None and flagged.sha256 != flagged.original_sha256
    statuses = []
    for model in (flagged, inside, folded):
        result = robustprop.check(model, CR(eps=0.03), x, metrics=("satisfaction",), timeout=20)
        statuses.append([p.verdict.status.value for p in result.points if p.verdict])
    assert statuses[0] == statuses[1] == statuses[2]
    assert {"holds", "violated"} <= set(statuses[0]), statuses[0]
    # a witness is a pixel-space point: the *original* model on its normalised value breaks CR
    result = robustprop.check(flagged, CR(eps=0.03), x, metrics=("satisfaction",), timeout=20)
    session = ort.InferenceSession(robustprop.load(body, example).data)
    name = session.get_inputs()[0].name
    mean, std = np.array(MEAN).reshape(1, 3, 1, 1), np.array(STD).reshape(1, 3, 1, 1)
    for point in result.points:
        v = point.verdict
        if v is None or v.witness is None:
            continue
        w = v.witness.reshape(1, 3, 6, 6)
        assert np.max(np.abs(w - x[point.index])) <= 0.03 + 1e-7 and w.min() >= 0 and w.max() <= 1
        (y,) = session.run(None, {name: ((w - mean) / std).astype(np.float32)})
        center = (x[point.index : point.index + 1] - mean) / std
        c = int(np.argmax(session.run(None, {name: center.astype(np.float32)})[0]))
        assert np.max(np.delete(y[0], c)) >= y[0, c]
        assert np.allclose(y.reshape(-1), v.witness_output, atol=1e-5)


def test_normalisation_is_checked_and_per_channel_needs_channels() -> None:
    body = _body()
    with pytest.raises(InputError, match=r"std: 0\.0 is not > 0"):
        robustprop.load(body, torch.zeros(1, 3, 6, 6), input_std=[0.2, 0.0, 0.3])
    with pytest.raises(InputError, match="has 3 channels"):
        robustprop.load(body, torch.zeros(1, 3, 6, 6), input_mean=[0.1, 0.2])


def test_cli_input_mean_and_std_take_pixel_data_and_are_recorded(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    model = tmp_path / "net.onnx"
    model.write_bytes(robustprop.load(net, torch.zeros(1, 4)).data)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random((3, 4)).astype(np.float32), y=np.zeros(3, np.int64))
    out = tmp_path / "run.json"
    args = ["run", "--property", "cr", "--eps", "0.01", "--net", str(model), "--data"]
    args += [str(tmp_path / "d.npz"), "--points", "3", "--no-cache", "--no-progress"]
    args += ["--input-mean", "0.5", "--input-std", "0.25,0.5", "--json", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["settings"]["input_normalization"] == {"mean": [0.5], "std": [0.25, 0.5]}
    assert doc["network"]["file_sha256"] != doc["network"]["sha256"]
    bad = CliRunner().invoke(cli, [*args[:-4], "--input-std", "0.1,x"])
    assert bad.exit_code == 2 and "--input-std: 'x' is not a number" in bad.output


# -- a final Softmax, unsupported ops -----------------------------------------------------


def _softmax_model(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3), torch.nn.Softmax(dim=1)
    )
    path = tmp_path / "softmax.onnx"
    path.write_bytes(robustprop.load(net, torch.zeros(1, 4)).data)
    return path


def test_a_final_softmax_is_dropped_for_cr_and_refused_with_a_hint_otherwise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _softmax_model(tmp_path)
    x = np.random.default_rng(0).random((3, 4))
    with pytest.raises(InputError, match="ends in Softmax: --property cr drops it") as err:
        network_from_bytes(path.read_bytes(), source="softmax.onnx")
    assert "sr, lr and scr need the logits" in str(err.value)
    with caplog.at_level(logging.WARNING):
        result = robustprop.check(str(path), CR(eps=0.01), x, timeout=10, samples=50)
    assert result.config.model.dropped == "Softmax"
    assert any("final Softmax is dropped for cr" in r.getMessage() for r in caplog.records)
    assert result.summary.points == 3
    with pytest.raises(InputError, match="sr, lr and scr need the logits"):
        robustprop.check(str(path), SR(eps=0.01, delta=1), x, timeout=10)
    cmd = ["run", "--property", "sr", "--net", str(path), "--data", "x.npz", "--no-cache"]
    out = CliRunner().invoke(cli, cmd)
    assert out.exit_code == 2 and "need the logits" in out.output


def test_unsupported_ops_are_named_with_the_supported_list_in_messages_help_and_readme() -> None:
    with pytest.raises(InputError, match="unsupported ONNX op 'Sigmoid'") as err:
        network_from_bytes((CORPUS / "sigmoid.onnx").read_bytes(), check_points=0)
    assert str(err.value).endswith(f"; supported: {', '.join(SUPPORTED_OPS)}")
    help_text = " ".join(CliRunner().invoke(cli, ["run", "--help"]).output.split())
    assert f"Supported ONNX ops: {', '.join(SUPPORTED_OPS)}." in help_text
    for option in ("--input-mean", "--input-std", "--domain"):
        assert option in help_text
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    listed = re.search(r"\*\*Supported ONNX ops\*\* \([^)]*\): ([A-Za-z, ]+)\.", readme)
    assert listed and tuple(listed.group(1).split(", ")) == SUPPORTED_OPS


# -- Git LFS pointers, the assumptions note ------------------------------------------------

LFS = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 12345\n"
)


def test_a_git_lfs_pointer_in_place_of_the_model_says_so(tmp_path: Path) -> None:
    pointer = tmp_path / "model.onnx"
    pointer.write_text(LFS)
    with pytest.raises(InputError, match="Git LFS pointer file"):
        ModelBytes.read(pointer)
    out = CliRunner().invoke(cli, ["run", "--property", "cr", "--net", str(pointer)])
    assert out.exit_code == 2, out.output
    for said in ("Git LFS pointer file", "size 12345", "git lfs pull", "lfs: true"):
        assert said in out.output


def test_a_foreign_model_gets_one_line_on_what_is_assumed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def notes(model: object, x: object = None, **kw: Any) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="robustprop.verify.run.runner"):
            robustprop.check(model, CR(eps=0.01), x, metrics=("satisfaction",), **kw)
        return [r.getMessage() for r in caplog.records if ": its " in r.getMessage()]

    data = {"data": CORPUS / "ok.npz", "points": 1}
    assert notes(CORPUS / "ok.onnx", **data) == []  # robustprop's own: metadata and Clip
    (line,) = notes(CORPUS / "no_metadata.onnx", **data)
    assert "no_metadata.onnx: its inputs are taken in [0, 1]" in line and "--domain" in line
    assert "unclamped" not in line  # it has its Clip
    assert notes(CORPUS / "no_metadata.onnx", domain=Domain(0.0, 1.0), **data) == []
    torch.manual_seed(0)
    (line,) = notes(robustprop.load(torch.nn.Linear(2, 2), torch.zeros(1, 2)), np.zeros((1, 2)))
    assert "unclamped (no final Clip)" in line


# -- conv models: a quiet float64 replay ---------------------------------------------------


def test_a_conv_model_replays_in_float64_without_onnxruntime_noise(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    body = _body()
    model = robustprop.load(body, torch.zeros(1, 3, 6, 6))
    x = torch.rand(6, 3, 6, 6, generator=torch.Generator().manual_seed(1)).numpy()
    capfd.readouterr()
    with caplog.at_level(logging.WARNING):
        replayer = Replayer(model.data, source="conv.onnx")
        result = robustprop.check(model, CR(eps=0.03), x, metrics=("satisfaction",), timeout=20)
    err = capfd.readouterr().err
    assert "NOT_IMPLEMENTED" not in err and "Conv(11)" not in err
    assert not [r for r in caplog.records if "float64" in r.getMessage()]
    assert replayer.float64_source == "ir" and "NOT_IMPLEMENTED" not in replayer.float64_note
    assert "no double-precision Conv kernel" in replayer.float64_note
    violated = [p for p in result.points if p.verdict and p.verdict.witness is not None]
    assert violated
    for point in violated:
        assert point.verdict is not None and point.verdict.witness is not None
        y32 = replayer.evaluate32(point.verdict.witness)[0]
        y64 = replayer.evaluate64(point.verdict.witness)[0]
        assert np.allclose(y32, y64, atol=1e-5)


def test_cli_domain_sets_the_input_box_and_is_recorded(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = tmp_path / "net.onnx"
    model.write_bytes(robustprop.load(torch.nn.Linear(2, 2), torch.zeros(1, 2)).data)
    np.savez(tmp_path / "d.npz", x=np.array([[0.5, 0.5]], np.float32), y=np.zeros(1, np.int64))
    args = ["run", "--property", "cr", "--eps", "0.01", "--net", str(model), "--data"]
    args += [str(tmp_path / "d.npz"), "--points", "1", "--no-cache", "--no-progress"]
    args += ["--metrics", "satisfaction", "--json", str(tmp_path / "r.json")]
    result = CliRunner().invoke(cli, [*args, "--domain", "0,2"])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["settings"]["domain"] == {"lower": 0.0, "upper": 2.0, "from": "given"}
    bad = CliRunner().invoke(cli, [*args, "--domain", "1"])
    assert bad.exit_code == 2 and "--domain: expected LO,HI" in bad.output
