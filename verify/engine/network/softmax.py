"""A classifier's final Softmax: found, explained, and dropped where the property allows it.

Softmax is not piecewise linear, so the IR has no layer for it. At the *end* of a network it
changes nothing that classification robustness (CR) looks at: ``argmax softmax(z) = argmax z``
(and likewise for LogSoftmax), so for CR the model is checked on its logits, with a note.
SR, LR and SCR read the scores themselves (SCR applies its own softmax to them): they need the
logits, and a model ending in Softmax is refused with that hint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustprop.properties.errors import InputError

if TYPE_CHECKING:
    import onnx

__all__ = ["SOFTMAX_OPS", "drop_final_softmax", "final_softmax", "softmax_hint"]

#: Ops that keep the argmax of the class axis and are dropped at the end of a model for CR.
SOFTMAX_OPS = ("Softmax", "LogSoftmax")


def softmax_hint(op: str) -> str:
    """What to do about a final ``op`` (Softmax or LogSoftmax)."""
    return (
        f"the model ends in {op}: --property cr drops it automatically (the argmax is "
        f"unchanged); sr, lr and scr need the logits, so export the network without the "
        f"final {op} (scr applies its own softmax)"
    )


def final_softmax(model: onnx.ModelProto) -> onnx.NodeProto | None:
    """The Softmax/LogSoftmax node producing the only output over the class axis, if any."""
    graph = model.graph
    if len(graph.output) != 1:
        return None
    out = graph.output[0]
    producers = [n for n in graph.node if out.name in n.output]
    if len(producers) != 1 or producers[0].op_type not in SOFTMAX_OPS:
        return None
    node = producers[0]
    if node.domain not in ("", "ai.onnx") or not node.input:
        return None
    if any(node.input[0] == o.name for o in graph.output):
        return None
    dims = out.type.tensor_type.shape.dim
    rank = len(dims)
    if rank == 0:
        return None
    opset = max(
        (int(i.version) for i in model.opset_import if i.domain in ("", "ai.onnx")), default=1
    )
    axis = next((int(a.i) for a in node.attribute if a.name == "axis"), -1 if opset >= 13 else 1)
    axis = axis + rank if axis < 0 else axis
    sizes = [int(d.dim_value) if d.HasField("dim_value") else 0 for d in dims]
    # Over the class axis: every other axis is the batch (axis 0) or has one element.
    others = [s for k, s in enumerate(sizes) if k not in (0, axis)]
    if axis == 0 or axis >= rank or any(s != 1 for s in others):
        return None
    found: onnx.NodeProto = node
    return found


def drop_final_softmax(data: bytes, source: str) -> tuple[bytes, str] | None:
    """``data`` without its final Softmax (the graph output is then its input) and the op's
    name; ``None`` when the model does not end in one."""
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception as err:  # protobuf's DecodeError and onnx's own errors
        raise InputError(f"{source} is not a readable ONNX model: {err}") from err
    node = final_softmax(model)
    if node is None:
        return None
    graph = model.graph
    out_name = graph.output[0].name
    logits = node.input[0]
    graph.node.remove(node)
    for other in graph.node:  # the logits keep the output's name
        for k, name in enumerate(other.output):
            if name == logits:
                other.output[k] = out_name
        for k, name in enumerate(other.input):
            if name == logits:
                other.input[k] = out_name
    if any(i.name == logits for i in graph.input) or any(
        init.name == logits for init in graph.initializer
    ):
        return None  # a softmax of the input itself: nothing to drop it from
    kept = [v for v in graph.value_info if v.name != logits]
    del graph.value_info[:]
    graph.value_info.extend(kept)
    return model.SerializeToString(), node.op_type
