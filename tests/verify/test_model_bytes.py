"""The model of a run is read once, self-contained, and its digest covers every byte used.

- External data (tensors in a side file) was resolved against the *current directory* and
  left out of the digest: replacing ``w.bin`` with other weights kept the sha256, so the store
  kept answering with the old network's ``holds``. Now it is read from the model's folder,
  inlined, and hashed; paths out of the folder are refused with the file named.
- Worker processes (``--jobs N``) get the run's bytes and never open the model's path: a file
  replaced or removed after :meth:`ModelBytes.read` changes nothing about the run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper
from onnx.external_data_helper import convert_model_to_external_data

import robustprop
from robustprop.properties import Domain, make_property
from robustprop.properties.errors import InputError
from robustprop.verify.cli.main import cli
from robustprop.verify.engine.point_query import Query
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.verdict import Status
from robustprop.verify.run.model import ModelBytes
from robustprop.verify.run.pool import WorkerPool, WorkerSpec

GOLDEN = Path(__file__).parent / "golden" / "golden.onnx"
CENTER = np.array([[0.8, 0.2]])


def _external(folder: Path, *, scale: float = 1.0, location: str = "w.bin") -> Path:
    """The golden net with every tensor in the side file ``location`` (W2 times ``scale``)."""
    model = onnx.load(str(GOLDEN))
    for i, tensor in enumerate(model.graph.initializer):
        if tensor.name == "W2":
            w2 = numpy_helper.to_array(tensor) * np.float32(scale)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(w2, "W2"))
    convert_model_to_external_data(
        model, all_tensors_to_one_file=True, location=location, size_threshold=0
    )
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(folder / "model.onnx"))
    return folder / "model.onnx"


def _sr(path: Path | ModelBytes, store: Path | None = None) -> robustprop.Result:
    """SR δ = 2.5 at ε = 0.1 holds on the golden net (max deviation 2) and is violated
    with W2 scaled by 1.5 (deviation 3)."""
    prop = make_property("sr", eps=0.1, delta=2.5)
    return robustprop.check(
        path, prop, CENTER, [0], metrics=("satisfaction",), backend="z3", store=store
    )


def test_external_data_is_read_beside_the_model_not_in_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _external(tmp_path / "net")
    monkeypatch.chdir(tmp_path)  # no w.bin here
    model = ModelBytes.read(path)
    assert model.external == ("w.bin",)
    assert onnx.load_model_from_string(model.data).graph.initializer[0].data_location == 0
    status = _sr(model).points[0].verdict
    assert status is not None and status.status is Status.HOLDS


def test_replacing_the_external_data_changes_the_digest_and_the_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _external(tmp_path / "net")
    other = _external(tmp_path / "other", scale=1.5)
    monkeypatch.chdir(path.parent)  # where the old code found w.bin
    store = tmp_path / "store.sqlite"
    first = _sr(path, store)
    assert first.points[0].verdict is not None
    assert first.points[0].verdict.status is Status.HOLDS
    before = ModelBytes.read(path).sha256

    shutil.copyfile(other.parent / "w.bin", path.parent / "w.bin")  # model.onnx unchanged
    assert ModelBytes.read(path).sha256 != before
    second = _sr(path, store)
    assert not second.points[0].reused
    assert second.points[0].verdict is not None
    assert second.points[0].verdict.status is Status.VIOLATED


def test_a_model_without_external_data_keeps_its_bytes_and_digest() -> None:
    model = ModelBytes.read(GOLDEN)
    assert model.data == GOLDEN.read_bytes() and model.external == ()


@pytest.mark.parametrize(
    ("location", "problem"),
    [
        ("/etc/passwd", "absolute path"),
        ("../w.bin", "'..'"),
        ("sub/../../w.bin", "'..'"),
        ("missing.bin", "no such file"),
    ],
)
def test_external_data_out_of_the_folder_is_refused(
    tmp_path: Path, location: str, problem: str
) -> None:
    path = _external(tmp_path / "net")
    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    (tmp_path / "w.bin").write_bytes((tmp_path / "net" / "w.bin").read_bytes())
    onnx.save_model(model, str(path))
    with pytest.raises(InputError) as err:
        ModelBytes.read(path)
    assert str(path) in str(err.value) and location in str(err.value)
    assert problem in str(err.value)


def test_a_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    path = _external(tmp_path / "net")
    outside = tmp_path / "elsewhere.bin"
    (path.parent / "w.bin").rename(outside)
    os.symlink(outside, path.parent / "w.bin")
    with pytest.raises(InputError, match=r"w\.bin.*symbolic link out of the model's folder"):
        ModelBytes.read(path)


def test_a_short_side_file_is_refused(tmp_path: Path) -> None:
    path = _external(tmp_path / "net")
    (path.parent / "w.bin").write_bytes(b"\0" * 4)
    with pytest.raises(InputError, match=r"w\.bin.*has 4 bytes"):
        ModelBytes.read(path)


def test_bytes_with_external_data_are_refused(tmp_path: Path) -> None:
    path = _external(tmp_path / "net")
    with pytest.raises(InputError, match="load the model from its path"):
        robustprop.load(path.read_bytes())


def _copy(tmp_path: Path, external: bool) -> Path:
    if external:
        return _external(tmp_path / "net")
    (tmp_path / "net").mkdir()
    return Path(shutil.copyfile(GOLDEN, tmp_path / "net" / "model.onnx"))


def _spoil(path: Path) -> None:
    """The file replaced by garbage, its side file gone."""
    path.write_bytes(b"garbage, not ONNX")
    (path.parent / "w.bin").unlink(missing_ok=True)


@pytest.mark.parametrize("external", [False, True])
def test_workers_never_open_the_model_path(tmp_path: Path, external: bool) -> None:
    """--jobs 2 after the file is replaced by garbage (and its side file removed): the run is
    entirely about the bytes read at the start (the workers used to re-read the path)."""
    path = _copy(tmp_path, external)
    model = ModelBytes.read(path)
    _spoil(path)
    prop = make_property("cr", eps=0.1)
    x = np.array([[0.8, 0.2], [0.75, 0.2], [0.7, 0.2], [0.9, 0.1]])
    result = robustprop.check(
        model, prop, x, metrics=("satisfaction",), backend="z3", strategy="plain", jobs=2
    )
    assert result.network.sha256 == model.sha256
    assert all(p.verdict is not None and p.verdict.status is Status.HOLDS for p in result.points)


def test_the_file_replaced_while_verify_run_jobs_2_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI: the model is replaced just before the workers start (after the parent read
    it); every verdict and the digest in the JSON are the original model's."""
    path = _copy(tmp_path, external=False)
    started = WorkerPool.__init__

    def replace_then_start(self: WorkerPool, *args: Any, **kwargs: Any) -> None:
        _spoil(path)
        started(self, *args, **kwargs)

    monkeypatch.setattr(WorkerPool, "__init__", replace_then_start)
    out = tmp_path / "r.json"
    args = [
        "run", "--property", "cr", "--eps", "0.1", "--net", str(path),
        "--data", str(GOLDEN.parent / "golden.npz"), "--points", "1",
        "--metrics", "satisfaction", "--backend", "z3", "--strategy", "plain",
        "--jobs", "2", "--no-cache", "--no-progress", "--json", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == b"garbage, not ONNX"
    doc = json.loads(out.read_text())
    assert doc["network"]["sha256"] == ModelBytes.read(GOLDEN).sha256
    assert [p["verdict"] for p in doc["points"]] == ["holds"]


@pytest.mark.parametrize("external", [False, True])
def test_a_replacement_worker_gets_the_same_bytes(tmp_path: Path, external: bool) -> None:
    """A worker started after a crash (mid-run) loads the run's bytes, not the new file."""
    path = _copy(tmp_path, external)
    model = ModelBytes.read(path)
    _spoil(path)
    prop = make_property("cr", eps=0.1)
    center = CENTER[0]
    y = Replayer(model.data, source=model.source).evaluate64(center)[0]
    negation = prop.negation(center, y, 0, Domain())
    queries = [Query(i, negation) for i in range(3)]
    spec = WorkerSpec(model, "z3", fault="crash", fault_index=0)
    with WorkerPool(spec, 2) as pool:
        got = {q.index: v.status for q, v in pool.map(queries, 10.0)}
    assert got == {0: Status.UNKNOWN, 1: Status.HOLDS, 2: Status.HOLDS}
