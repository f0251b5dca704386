"""Write the resource-limit and hostile-name files of the corpus (tests/test_corpus_files.py).

Each file is small (a few kB) but claims or holds what used to cost gigabytes or crash:
``.npz`` members whose headers claim terabytes, an object array, JSON nested 5,000 deep,
a 5,000-digit number, and names with terminal control sequences and Markdown syntax.
Run ``python tests/corpus/make_limits_corpus.py`` to rewrite them; the output is stable.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
_DATE = (2020, 1, 1, 0, 0, 0)


def _put(archive: zipfile.ZipFile, key: str, payload: bytes) -> None:
    info = zipfile.ZipInfo(f"{key}.npy", date_time=_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, payload)


def _array(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _claiming(shape: tuple[int, ...], dtype: str) -> bytes:
    """A ``.npy`` header claiming ``shape`` followed by 64 kB of zeros (not the claimed size)."""
    buffer = io.BytesIO()
    header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + bytes(1 << 16)


def write_npz() -> list[str]:
    x = np.array([[0.8, 0.2], [0.3, 0.6], [0.5, 0.1]], dtype=np.float32)
    y = np.array([0, 1, 0], dtype=np.int64)
    files = {
        # x and y claim 3.1 GB and 32 MB: refused from the headers, nothing inflated.
        "data_claims_huge": {
            "x": _claiming((4_000_000, 784), "|u1"),
            "y": _claiming((4_000_000,), "<i8"),
        },
        # A pickled object array as labels: refused by name, never unpickled.
        "data_object_labels": {"x": _array(x), "y": _array(np.array([0, 1, None], object))},
        # A good file plus a member claiming 8 TB that nobody needs: it loads.
        "data_unused_huge_key": {
            "x": _array(x),
            "y": _array(y),
            "junk": _claiming((1_000_000, 1_000_000), "<f8"),
        },
    }
    for name, members in files.items():
        with zipfile.ZipFile(HERE / f"{name}.npz", "w") as archive:
            for key, payload in members.items():
                _put(archive, key, payload)
    return [f"{n}.npz" for n in files]


def _report(network: str, reference: str = "output", **params: object) -> dict[str, object]:
    return {
        "tool": "robustprop",
        "version": "0.1.0",
        "network": {"path": network, "sha256": "0" * 64},
        "property": {"name": "cr", "params": {"eps": 0.1, "reference": reference, **params}},
        "data": {"source": "ok.npz", "split": "test", "points": 1, "seed": None},
        "backend": "z3",
        "metrics": ["satisfaction"],
        "summary": {
            "points": 1,
            "holds": 1,
            "violated": 0,
            "unknown": 0,
            "satisfaction": [1.0, 1.0],
            "invariant_breaches": [],
        },
        "points": [{"index": 0, "label": 0, "verdict": "holds", "time_s": 0.1}],
    }


#: Every character class that broke the report or the terminal, in one network path.
HOSTILE_NAME = "a|b*c_d`e$f$\\g#h~i&amp;<b>[j](k)!{l}\x1b[2J\x9b\u202e\nm\udcff.onnx"


def write_reports() -> list[str]:
    texts = {
        "report_deep": "[" * 5_000 + "]" * 5_000,
        "report_huge_integer": '{"tool": "robustprop", "version": ' + "9" * 5000 + "}",
        "report_control_key": json.dumps(_report("ok.onnx", **{"\x1b[2J\x1b]0;pwned\x07": [1]})),
        "report_hostile_names": json.dumps(_report(HOSTILE_NAME, reference="out|put$x$")),
    }
    for name, text in texts.items():
        (HERE / f"{name}.json").write_text(text + "\n", encoding="utf-8")
    return [f"{n}.json" for n in texts]


def main() -> None:
    for name in [*write_npz(), *write_reports()]:
        print(HERE / name)


if __name__ == "__main__":
    main()
