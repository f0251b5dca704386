"""`verify report` deletes only what it made, survives any name, and reads bounded input.

- the figures folder ``<stem>_files/`` is replaced only when it carries robustprop's marker;
  a user's folder (or a link) of that name is refused and left as it was;
- ``-o`` follows a link to its target and refuses a device; ``--junit -`` is stdout;
- names with Markdown/HTML syntax, ``$`` (matplotlib mathtext), control characters or
  non-UTF-8 bytes are shown literally in the report, the figures and the messages;
- run documents: a size cap and a nesting cap, checked before parsing.
"""

from __future__ import annotations

import json
import os
import stat
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from robustprop.properties.errors import InputError
from robustprop.verify.cli.main import cli
from robustprop.verify.report import load as load_module
from robustprop.verify.report.load import load_runs

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
ESC = "\x1b"


def report(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["report", *map(str, args)])


def _doc(network: str = "ok.onnx", **params: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((CORPUS / "report_ok.json").read_text())
    doc["network"]["path"] = network
    doc["property"]["params"].update(params)
    return doc


def _write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


# -- what it deletes ----------------------------------------------------------------------------


def test_a_users_folder_of_the_figures_name_is_refused_and_kept(tmp_path: Path) -> None:
    mine = tmp_path / "out_files"
    mine.mkdir()
    (mine / "precious.txt").write_text("mine")
    result = report(CORPUS / "report_ok.json", "-o", tmp_path / "out.md")
    assert result.exit_code == 2, result.output
    assert "out_files: exists and was not made by verify report" in result.stderr
    assert (mine / "precious.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out_files"]  # no report either


def test_a_link_at_the_figures_name_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.png").write_bytes(b"png")
    (tmp_path / "out_files").symlink_to(elsewhere)
    result = report(CORPUS / "report_ok.json", "-o", tmp_path / "out.md")
    assert result.exit_code == 2 and "out_files" in result.stderr
    assert (tmp_path / "out_files").is_symlink() and (elsewhere / "keep.png").exists()


def test_its_own_folder_is_replaced_and_marked(tmp_path: Path) -> None:
    out = tmp_path / "out.md"
    assert report(CORPUS / "report_ok.json", "-o", out).exit_code == 0
    (tmp_path / "out_files" / "stale.png").write_bytes(b"old figure")
    assert report(CORPUS / "report_ok.json", "-o", out).exit_code == 0
    names = sorted(p.name for p in (tmp_path / "out_files").iterdir())
    assert names == [
        ".robustprop-report",
        "01-cr-networks.pdf",
        "01-cr-networks.png",
        "01-cr-networks.svg",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.md", "out_files"]


def test_output_link_is_followed_figures_beside_the_target(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link.md"
    link.symlink_to(real / "target.md")
    result = report(CORPUS / "report_ok.json", "-o", link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and (real / "target.md").read_text().startswith("# Robustness")
    assert (real / "target_files" / "01-cr-networks.png").is_file()


def test_output_device_is_refused_and_kept(tmp_path: Path) -> None:
    device = tmp_path / "null.md"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except OSError as err:
        pytest.skip(f"cannot make a device node here ({err})")
    result = report(CORPUS / "report_ok.json", "-o", device)
    assert result.exit_code == 2 and "is a character device" in result.stderr
    assert stat.S_ISCHR(os.lstat(device).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null.md"]


def test_junit_dash_is_standard_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = report(CORPUS / "report_ok.json", "-o", "r.md", "--junit", "-")
    assert result.exit_code == 0, result.output
    assert ET.fromstring(result.stdout).get("tests") == "1"
    assert "wrote r.md" in result.stderr
    assert not (tmp_path / "-").exists()


# -- names --------------------------------------------------------------------------------------


def test_dollar_names_do_not_break_the_figures(tmp_path: Path) -> None:
    """matplotlib reads $...$ as mathtext; a bad formula raised and the report failed."""
    doc = _write(tmp_path / "d.json", _doc("m$\\frac$x$.onnx", reference="a$^$b"))
    result = report(doc, "-o", tmp_path / "r.md")
    assert result.exit_code == 0, result.output
    assert "m\\$\\\\frac\\$x\\$.onnx" in (tmp_path / "r.md").read_text()


def test_markdown_syntax_in_names_stays_in_its_table_cell(tmp_path: Path) -> None:
    name = "a|b*c_d`e[f](g)<h>#i~j&amp;\nk.onnx"
    result = report(_write(tmp_path / "d.json", _doc(name)), "-o", tmp_path / "r.md")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "r.md").read_text()
    (row,) = [line for line in text.splitlines() if line.startswith("| a")]
    unescaped = row.replace("\\\\", "").replace("\\|", "")
    assert unescaped.count("|") == 11  # ten columns
    assert "\\&amp;" in row and "\\<h\\>" in row and "\\\\n" in row


def test_non_utf8_file_names_and_lone_surrogates(tmp_path: Path) -> None:
    odd = tmp_path / b"run-\xff.json".decode("utf-8", "surrogateescape")
    _write(odd, _doc("net-\ud800.onnx"))
    for out, shown in (("r.md", "run-\\\\xff"), ("r.html", "run-\\xff")):
        result = report(odd, "-o", tmp_path / out, "--label-by", "file")
        assert result.exit_code == 0, result.output
        assert shown in (tmp_path / out).read_text(encoding="utf-8")  # the byte, visible


def test_messages_escape_control_characters(tmp_path: Path) -> None:
    out = tmp_path / f"r{ESC}[2J.md"
    result = report(CORPUS / "report_ok.json", "-o", out)
    assert result.exit_code == 0, result.output
    assert ESC not in result.stdout and "r\\x1b[2J.md" in result.stdout
    bad = _write(tmp_path / f"bad{ESC}.json", {"tool": "robustprop", "kind": "sweep", "runs": []})
    result = report(bad, "-o", tmp_path / "x.md")
    assert result.exit_code == 2 and ESC not in result.stderr and "bad\\x1b.json" in result.stderr


def test_every_error_line_escapes_control_characters(tmp_path: Path) -> None:
    net = tmp_path / f"{ESC}]0;title{ESC}\\.onnx"
    result = CliRunner().invoke(cli, ["run", "--property", "cr", "--net", str(net)])
    assert result.exit_code == 2
    assert ESC not in result.stderr, result.stderr


# -- bounded input ------------------------------------------------------------------------------


def test_document_over_the_size_cap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(load_module, "MAX_DOCUMENT_BYTES", 1000)
    big = _doc()
    big["points"][0]["reason"] = "x" * 2000
    path = _write(tmp_path / "big.json", big)
    with pytest.raises(
        InputError, match=r"larger than the cap of 1,000 bytes .*MAX_DOCUMENT_BYTES"
    ):
        load_runs([path])


def test_nesting_is_counted_outside_strings(tmp_path: Path) -> None:
    doc = _doc()
    doc["points"][0]["reason"] = "[" * 500 + "{" * 500 + '"\\"[['  # inside a string: fine
    assert len(load_runs([_write(tmp_path / "ok.json", doc)])) == 1
    nested: Any = 1
    for _ in range(65):
        nested = [nested]
    doc["extra"] = nested
    with pytest.raises(InputError, match="nested more than 64 levels deep"):
        load_runs([_write(tmp_path / "deep.json", doc)])


def test_endless_input_is_read_only_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_module, "MAX_DOCUMENT_BYTES", 1 << 20)
    with pytest.raises(InputError, match="MAX_DOCUMENT_BYTES"):
        load_runs([Path("/dev/zero")])
