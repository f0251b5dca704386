"""Hostile ONNX models (issue "Trust under attack", item 3): what reading a model may allocate,
open or compute is capped, and every refusal is an InputError naming the node or op and the cap.

Each model of :data:`tests.verify.hostile_onnx.HOSTILE` is read in a forked child whose address
space is limited, so that a regression fails the test instead of exhausting the machine. Before
the caps: a MemoryError (``concat_doubling``, ``broadcast_square``, ``matmul_outer``,
``gather_square``, ``mul_broadcast_input``, ``conv_huge_pads``; ``deep_wide`` after allocating
gigabytes), a ZeroDivisionError (``conv_zero_stride``), infinite weights accepted
(``divide_by_zero``), 200,000 nodes read one by one (``many_nodes``), and a file of the working
folder read as weights (``external_data``).
"""

from __future__ import annotations

import multiprocessing as mp
import resource
from pathlib import Path

import pytest

from robustprop.properties.errors import InputError
from robustprop.verify.engine.network import network_from_bytes, symbolic
from robustprop.verify.engine.network import reader as reader_module
from tests.verify.hostile_onnx import HOSTILE, deep_wide, float32_overflow, many_nodes

_HEADROOM = 3 * 1024**3  # bytes of address space the child may add to what it inherits


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def _child(data: bytes, conn: mp.connection.Connection) -> None:
    limit = _vm_size() + _HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        network_from_bytes(data, check_points=0)
        conn.send(("read", ""))
    except InputError as err:
        conn.send(("InputError", str(err)))
    except BaseException as err:  # the failures these caps replace
        conn.send((type(err).__name__, str(err)[:300]))


def read_limited(data: bytes, timeout: float = 60.0) -> tuple[str, str]:
    """(outcome, message) of reading ``data`` in a forked child with limited memory."""
    ctx = mp.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(data, sender))
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            return "timeout", f"no answer within {timeout} s"
        return receiver.recv()  # type: ignore[no-any-return]
    except EOFError:
        return "died", f"exit code {process.exitcode}"
    finally:
        if process.is_alive():
            process.kill()
        process.join()


@pytest.mark.parametrize("name", sorted(set(HOSTILE) - {"deep_wide", "many_nodes"}))
def test_hostile_model_is_refused_naming_node_and_cap(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder, names = HOSTILE[name]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights.bin").write_bytes(bytes(range(16)))  # what external data would read
    outcome, message = read_limited(builder())
    assert outcome == "InputError", (outcome, message)
    for part in names:
        assert part in message, (part, message)
    assert "<model>" in message  # the model is named


def test_deep_graph_is_refused_by_what_it_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each (Add a shared bias, Relu) step holds a new width x width layer: a 50 MB cap stops a
    graph that would need 400 MB (the real cap, 2 GiB, is reached the same way)."""
    monkeypatch.setattr(symbolic, "MAX_READ_BYTES", 50 * 1024**2)
    outcome, message = read_limited(deep_wide(width=1000, depth=50))
    assert outcome == "InputError", message
    assert "MAX_READ_BYTES" in message and "at node 'relu" in message


def test_node_count_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_module, "MAX_NODES", 1000)
    outcome, message = read_limited(many_nodes(count=1001))
    assert outcome == "InputError", message
    assert "1002 nodes (at most 1000, MAX_NODES)" in message


def test_caps_leave_ordinary_models_alone() -> None:
    """A wide (7000) single step, a chain of 1000 nodes: read as before."""
    assert len(network_from_bytes(many_nodes(count=1000), check_points=2).layers) == 0
    net = network_from_bytes(deep_wide(width=200, depth=3), check_points=2)
    assert len(net.layers) == 6


def test_tensors_are_freed_after_their_last_use() -> None:
    """Only live tensors count against the cap: after the read, the reader holds the output
    (and no intermediate of the 80 nodes), and its byte count agrees."""
    import onnx

    graph_reader = reader_module.GraphReader(onnx.load_from_string(deep_wide(300, 40)), "m", "")
    net = graph_reader.read()
    assert len(net.layers) == 80
    assert set(graph_reader.values) == {"y"}  # "bias" was last read by add39
    held = sum(symbolic.value_bytes(v) for v in graph_reader.values.values())
    assert graph_reader.live_bytes == held


def test_float32_overflow_is_refused_at_the_onnxruntime_check() -> None:
    """Weights of 1e30 in two layers: onnxruntime computes inf (float32) where the float64 IR
    gives 1e60. Before: the check passed (inf <= inf tolerance) and witnesses were replayed
    against infinite outputs; now an InputError names the model, the output and the point."""
    with pytest.raises(InputError, match=r"<model>: onnxruntime computes inf for output 0"):
        network_from_bytes(float32_overflow())
