"""Input normalisation ``(x − mean) / std`` put in front of a model, so regions stay in pixel space.

A network trained on normalised inputs takes ``(x − mean) / std`` where ``x`` is the image in
``[0, 1]``. :func:`with_input_normalization` returns the model with that step as its first two
nodes (``Sub`` and ``Div`` by constants, in the model's own input precision): the new input is
the pixel-space ``x``, the original graph is unchanged after it. Everything downstream reads
that one model: the IR reader folds the two constant ops into the first affine or convolution
layer (it composes affine maps symbolically), onnxruntime evaluates the *original* graph on the
normalised input exactly as a deployed pipeline would (float32), the float64 replay evaluates
it in double precision, and a witness is a pixel-space point. The model's digest changes with
the statistics, so a verdict store never mixes the normalised and the plain model.

The statistics are one value (every input) or one per channel: axis 1 of an image input
``(N, C, H, W)``; for a flat input ``(N, n)`` with ``k`` values (``n`` a multiple of ``k``),
value ``i`` belongs to channel ``i // (n / k)`` (a channel-major flattening of ``(C, H, W)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from robustprop.properties.errors import InputError

__all__ = ["InputNormalization", "parse_stats", "with_input_normalization"]


@dataclass(frozen=True)
class InputNormalization:
    """``(x − mean) / std`` per channel; one value of either applies to every channel."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        for name, values in (("mean", self.mean), ("std", self.std)):
            if not values:
                raise InputError(f"input {name}: give one value or one per channel")
            bad = [v for v in values if not math.isfinite(v)]
            if bad:
                raise InputError(f"input {name}: {bad[0]!r} is not a finite number")
        bad_std = [v for v in self.std if not v > 0]
        if bad_std:
            raise InputError(f"input std: {bad_std[0]!r} is not > 0")
        if len(self.mean) != len(self.std) and 1 not in (len(self.mean), len(self.std)):
            raise InputError(
                f"input mean has {len(self.mean)} values and std {len(self.std)}: give one "
                "value or the same number per channel"
            )

    @property
    def channels(self) -> int:
        return max(len(self.mean), len(self.std))

    def to_json(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    def arrays(self, input_shape: tuple[int, ...], source: str) -> tuple[Any, Any]:
        """``mean`` and ``std`` as float64 arrays broadcasting against ``input_shape``."""
        k = self.channels
        mean = np.broadcast_to(np.asarray(self.mean, dtype=np.float64), (k,))
        std = np.broadcast_to(np.asarray(self.std, dtype=np.float64), (k,))
        if k == 1:
            return mean.reshape(()), std.reshape(())
        if len(input_shape) >= 3:
            if input_shape[1] != k:
                raise InputError(
                    f"{source}: input normalisation has {k} values, the input {list(input_shape)} "
                    f"has {input_shape[1]} channels (axis 1)"
                )
            shape = (k,) + (1,) * (len(input_shape) - 2)
            return mean.reshape(shape), std.reshape(shape)
        n = input_shape[-1] if input_shape else 1
        if len(input_shape) != 2 or n % k:
            raise InputError(
                f"{source}: input normalisation has {k} values, which do not split the input "
                f"{list(input_shape)} into channels"
            )
        return np.repeat(mean, n // k), np.repeat(std, n // k)


def parse_stats(text: str, option: str) -> tuple[float, ...]:
    """``"0.5"`` or ``"0.485,0.456,0.406"`` as floats; an InputError naming ``option``."""
    values = []
    for item in text.split(","):
        try:
            values.append(float(item))
        except ValueError as err:
            raise InputError(f"{option}: {item.strip()!r} is not a number") from err
    return tuple(values)


def with_input_normalization(data: bytes, norm: InputNormalization, source: str) -> bytes:
    """The model ``data`` taking pixel-space inputs: ``(x − mean) / std`` feeds its input."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load_model_from_string(data)
    except Exception as err:  # protobuf's DecodeError and onnx's own errors
        raise InputError(f"{source} is not a readable ONNX model: {err}") from err
    graph = model.graph
    initialized = {init.name for init in graph.initializer}
    real = [i for i in graph.input if i.name not in initialized]
    if len(real) != 1:
        names = ", ".join(repr(i.name) for i in real) or "none"
        raise InputError(
            f"{source} must have exactly one real (non-initializer) input, has {names}"
        )
    original = real[0]
    ttype = original.type.tensor_type
    dtypes = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.DOUBLE: np.float64}
    if ttype.elem_type not in dtypes:
        raise InputError(
            f"{source}: input {original.name!r} has element type {ttype.elem_type}; input "
            "normalisation needs a float or double input"
        )
    shape = tuple(
        int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else 1
        for d in ttype.shape.dim
    )
    mean, std = norm.arrays(shape, source)
    dtype = dtypes[ttype.elem_type]
    taken = {v.name for v in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]}
    taken |= {out for node in graph.node for out in node.output}

    def fresh(base: str) -> str:
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    pixels, centred = fresh(f"{original.name}_pixels"), fresh(f"{original.name}_centred")
    mean_name, std_name = fresh("input_mean"), fresh("input_std")
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.asarray(mean, dtype=dtype), mean_name),
            numpy_helper.from_array(np.asarray(std, dtype=dtype), std_name),
        ]
    )
    new_input = onnx.ValueInfoProto()
    new_input.CopyFrom(original)
    new_input.name = pixels
    position = list(graph.input).index(original)
    graph.input.remove(original)
    graph.input.insert(position, new_input)
    make = onnx.helper.make_node
    nodes = [
        make("Sub", [pixels, mean_name], [centred], name="input_normalize_sub"),
        make("Div", [centred, std_name], [original.name], name="input_normalize_div"),
    ]
    old = list(graph.node)
    del graph.node[:]
    graph.node.extend([*nodes, *old])
    out: bytes = model.SerializeToString()
    return out
