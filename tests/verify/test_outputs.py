"""User-named outputs never replace what is not a regular file (``write_output``,
``atomic_write``): devices and FIFOs are written in place, links are followed, sockets are
refused, ``-`` is standard output, ``/dev/full`` is a clear "no space" error.

Device nodes are made with ``mknod`` inside the test folder (the tests run as root in CI;
elsewhere they are skipped), so the system's own ``/dev/null`` is never at risk.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from click.testing import CliRunner

from robustprop.properties.errors import InputError
from robustprop.training.cache import OutputKindError, atomic_write, output_kind
from robustprop.verify.cli.main import cli
from robustprop.verify.formats.output_file import check_output, write_output, writes_in_place

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
DATA = b'{"written": true}\n'


def _write(handle: IO[bytes]) -> None:
    handle.write(DATA)


def _device(path: Path, minor: int) -> Path:
    """A character device of the memory driver (major 1): 3 is null, 7 is full."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
        with path.open("wb"):
            pass
    except OSError as err:  # not root, or a nodev mount
        pytest.skip(f"cannot make a device node here ({err})")
    return path


@pytest.fixture
def null(tmp_path: Path) -> Path:
    return _device(tmp_path / "null", 3)


@pytest.fixture
def full(tmp_path: Path) -> Path:
    return _device(tmp_path / "full", 7)


def _is_char_device(path: Path) -> bool:
    return stat.S_ISCHR(os.lstat(path).st_mode)


def test_character_device_is_written_in_place(null: Path) -> None:
    write_output(null, "--json", _write)
    assert _is_char_device(null)  # not replaced by a regular file
    assert [p.name for p in null.parent.iterdir()] == ["null"]  # no temporary file left
    assert output_kind(null) == "character device" and writes_in_place(null)


def test_full_device_is_an_input_error_naming_option_and_path(full: Path) -> None:
    with pytest.raises(InputError, match="No space left on device") as info:
        write_output(full, "--junit", _write)
    assert str(info.value).startswith(f"--junit {full}: cannot write")
    assert _is_char_device(full)


def test_fifo_is_written_in_place_for_its_reader(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_output(fifo, "--json", _write)
    reader.join(timeout=10)
    assert received == [DATA]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_symbolic_link_is_followed_and_kept(tmp_path: Path) -> None:
    target = tmp_path / "real" / "out.json"
    target.parent.mkdir()
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_output(link, "--json", _write)
    assert link.is_symlink() and link.resolve() == target
    assert target.read_bytes() == DATA
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the replaced file keeps its mode
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_dangling_link_makes_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to("made.json")
    write_output(link, "--json", _write)
    assert link.is_symlink() and (tmp_path / "made.json").read_bytes() == DATA


def test_socket_is_refused_naming_the_kind(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(InputError, match=r"--json .*s: is a socket, not a file"):
            write_output(path, "--json", _write)
        with pytest.raises(OutputKindError):
            atomic_write(path, _write)
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_atomic_write_of_a_device_does_not_rename(null: Path) -> None:
    """The writer under checkpoints and training logs has the same rule."""
    atomic_write(null, _write)
    assert _is_char_device(null)


def test_dash_is_standard_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_output(Path("-"), "--json", _write)
    assert capfdbinary.readouterr().out == DATA
    assert list(tmp_path.iterdir()) == []  # no file named "-"


def test_dev_stdout_redirected_to_a_file_is_appended(tmp_path: Path) -> None:
    """``--json /dev/stdout > out.txt`` keeps what was printed before (no rename over it)."""
    out = tmp_path / "out.txt"
    link = tmp_path / "stdout"
    link.symlink_to(f"/proc/self/fd/{1}")
    code = (
        "import sys; from pathlib import Path\n"
        "from robustprop.verify.formats.output_file import write_output\n"
        "print('summary line')\n"
        f"write_output(Path({str(link)!r}), '--json', lambda h: h.write({DATA!r}))\n"
        "print('after')\n"
    )
    with out.open("wb") as handle:
        subprocess.run([sys.executable, "-c", code], stdout=handle, check=True, timeout=120)
    assert out.read_bytes() == b"summary line\n" + DATA + b"after\n"


# -- through the command line ------------------------------------------------------------------


def _run_args(tmp: Path, *extra: str) -> list[str]:
    return [
        "run", "--property", "cr", "--net", str(CORPUS / "ok.onnx"), "--data",
        str(CORPUS / "ok.npz"), "--points", "2", "--metrics", "satisfaction", "--backend", "z3",
        "--timeout", "5", "--no-progress", "--store", str(tmp / "store.sqlite"), *extra,
    ]  # fmt: skip


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    yield _device(tmp_path / "null", 3), _device(tmp_path / "full", 7)


def test_run_json_and_junit_to_devices_keep_the_devices(
    tmp_path: Path, nodes: tuple[Path, Path]
) -> None:
    null, _ = nodes
    null2 = _device(tmp_path / "null2", 3)
    result = CliRunner().invoke(
        cli, _run_args(tmp_path, "--json", str(null), "--junit", str(null2))
    )
    assert result.exit_code == 0, result.output
    assert _is_char_device(null) and _is_char_device(null2)


def test_run_json_to_full_device_is_exit_2(tmp_path: Path, nodes: tuple[Path, Path]) -> None:
    _, full = nodes
    result = CliRunner().invoke(cli, _run_args(tmp_path, "--json", str(full)))
    assert result.exit_code == 2, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: --json {full}: cannot write") and "No space left" in last
    assert f"wrote {full}" not in result.stdout
    assert _is_char_device(full)


def test_run_json_dash_makes_no_file_named_dash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, _run_args(tmp_path, "--json", "-"))
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "-").exists()
    assert '"tool": "robustprop"' in result.stdout


def test_run_json_dash_stdout_is_only_the_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = [a for a in _run_args(tmp_path, "--json", "-") if a != "--store"]
    args.remove(str(tmp_path / "store.sqlite"))
    monkeypatch.setenv("ROBUSTPROP_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tool"] == "robustprop"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_check_output_before_any_work(tmp_path: Path, null: Path) -> None:
    """What ``verify run`` checks up front: the same rules as :func:`write_output`."""
    check_output(Path("-"), "--json")
    check_output(null, "--json")
    check_output(tmp_path / "new.json", "--json")
    with pytest.raises(InputError, match=r"--json .*: is a directory"):
        check_output(tmp_path, "--json")
    with pytest.raises(InputError, match=r"folder .*absent does not exist"):
        check_output(tmp_path / "absent" / "x.json", "--json")
    sock = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(sock))
        with pytest.raises(InputError, match=r"--junit .*s: is a socket"):
            check_output(sock, "--junit")
