"""More bad inputs for ``verify run`` (``tests/corpus/make_corpus_trust.py``), held to the rules
of ``tests/test_corpus.py``: exit 2, one line naming the culprit, nothing left or changed.

- a model whose external data is outside its folder (absolute path, ``..``) or missing: it
  used to be read relative to the current directory, and was not in the digest;
- another application's SQLite file as ``--store``: it used to be switched to WAL mode and
  given our tables.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from robustprop.verify.cli.main import cli
from tests.test_corpus import CORPUS, Case, check_failure, run_args

CASES: dict[str, Case] = {
    "external_absolute": Case(
        run_args(net="{c}/external_absolute.onnx"),
        ("external_absolute.onnx", "/etc/hostname", "absolute path"),
    ),
    "external_dotdot": Case(
        run_args(net="{c}/external_dotdot.onnx"),
        ("external_dotdot.onnx", "../corpus/ok.npz", "'..'"),
    ),
    "external_missing": Case(
        run_args(net="{c}/external_missing.onnx"),
        ("external_missing.onnx", "external_missing.bin", "no such file"),
    ),
    "store_foreign_app": Case(
        run_args("--store", "{o}/store.sqlite"), ("store.sqlite", "another application", "users")
    ),
}


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(folder.rglob("*"))
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    out = tmp_path / "out"
    out.mkdir()
    if name == "store_foreign_app":
        shutil.copyfile(CORPUS / "store_foreign_app.sqlite", out / "store.sqlite")
    before = _snapshot(out)
    corpus_before = _snapshot(CORPUS)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "external_missing.bin").write_bytes(b"\0" * 64)  # in the cwd: not looked at
    args = [a.format(c=CORPUS, o=out) for a in case.args]
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    check_failure(result, case)
    assert _snapshot(out) == before, "the failed command left or changed files"
    assert _snapshot(CORPUS) == corpus_before
