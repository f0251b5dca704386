"""Checkpoints: round trip and clear errors for missing or foreign files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robustprop.properties.errors import InputError
from robustprop.training.checkpoint import load_checkpoint, save_checkpoint
from robustprop.training.models import build_model

torch.set_num_threads(1)


def test_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("mlp-deep", 12, 3)
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, "mlp-deep", 12, 3, {"dataset": "x.npz", "seed": "0"})
    ckpt = load_checkpoint(path)
    assert (ckpt.arch, ckpt.n_inputs, ckpt.n_classes) == ("mlp-deep", 12, 3)
    assert ckpt.metadata == {"dataset": "x.npz", "seed": "0"}
    x = torch.rand(4, 12)
    rebuilt = ckpt.build()
    assert not rebuilt.training
    assert torch.equal(rebuilt(x), model(x))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage bytes, not a checkpoint", b"PK\x03\x04truncated zip"],
    ids=["empty", "garbage", "bad-zip"],
)
def test_garbage_names_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"bad\.pt: not a readable robustprop checkpoint"):
        load_checkpoint(path)


def test_foreign_and_missing_files(tmp_path: Path) -> None:
    foreign = tmp_path / "sd.pt"
    torch.save(build_model("mlp", 3, 2).state_dict(), foreign)  # a bare state dict
    with pytest.raises(InputError, match=r"sd\.pt: not a robustprop checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(InputError, match=r"absent\.pt: no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")


def test_weights_that_do_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    save_checkpoint(path, build_model("mlp", 5, 2), "mlp-deep", 5, 2, {})
    with pytest.raises(InputError, match=r"m\.pt: weights do not fit architecture 'mlp-deep'"):
        load_checkpoint(path).build()


def test_metadata_must_be_strings(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="str to str"):
        save_checkpoint(tmp_path / "m.pt", build_model("mlp", 3, 2), "mlp", 3, 2, {"seed": 1})  # type: ignore[dict-item]
    assert not list(tmp_path.iterdir())
