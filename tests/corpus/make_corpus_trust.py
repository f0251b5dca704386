"""Writes the corpus files of ``tests/test_corpus_runs.py`` (run: python make_corpus_trust.py).

Inputs an attacker or an accident can put beside a model or a store: ONNX models whose
external data lies outside the model's folder or is missing, and an SQLite file of another
application given as ``--store``. Deterministic: the same bytes on every run.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import onnx

HERE = Path(__file__).parent

#: name -> where the model says its tensors are (every initializer points there)
EXTERNAL = {
    "external_absolute": "/etc/hostname",
    "external_dotdot": "../corpus/ok.npz",
    "external_missing": "external_missing.bin",
}


def write_external() -> list[str]:
    """``ok.onnx`` with every initializer's data 'stored' at a bad location."""
    names = []
    for name, location in EXTERNAL.items():
        model = onnx.load(str(HERE / "ok.onnx"))
        for tensor in model.graph.initializer:
            size = len(tensor.raw_data)
            tensor.ClearField("raw_data")
            tensor.ClearField("float_data")
            tensor.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", location), ("offset", "0"), ("length", str(size))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
        (HERE / f"{name}.onnx").write_bytes(model.SerializeToString())
        names.append(f"{name}.onnx")
    return names


def write_foreign_store() -> list[str]:
    """Another application's SQLite database (a users table), given as --store."""
    path = HERE / "store_foreign_app.sqlite"
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        db.execute("INSERT INTO users VALUES (1, 'ada')")
    db.close()
    return ["store_foreign_app.sqlite"]


def main() -> None:
    written = [*write_external(), *write_foreign_store()]
    print(f"wrote {len(written)} files to {HERE}")


if __name__ == "__main__":
    main()
