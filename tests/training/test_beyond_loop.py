"""The certified and lipschitz regimes in the training loop: config, schedule, determinism,
resume, and what certified training does."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from robustprop.properties import Domain, make_property
from robustprop.properties.errors import InputError
from robustprop.training.config import CertifiedConfig, LipschitzConfig, TrainConfig
from robustprop.training.data import Dataset, load_dataset, subset
from robustprop.training.lipschitz import lipschitz_bound
from robustprop.training.loop import RunFiles, RunOptions, TrainResult, train
from robustprop.training.regimes import STATS, Certified

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data() -> tuple[Dataset, Dataset]:
    train_data = subset(load_dataset("fashion-mnist-slice", "train"), 256, seed=None)
    test_data = load_dataset("fashion-mnist-slice", "test").take(range(128))
    return train_data, test_data


def _certified(
    epochs: int = 3, prop: str = "cr", eps: float = 0.1, **changes: object
) -> TrainConfig:
    params = {"delta": 1.0} if prop == "sr" else {}  # SR: a δ that needs training
    built = make_property(prop, eps=eps, **params)
    base = TrainConfig.preset("certified", "certified", prop=built)
    schedule = CertifiedConfig(warmup_epochs=1, ramp_epochs=1)
    return dataclasses.replace(base, epochs=epochs, certified=schedule, **changes)  # type: ignore[arg-type]


def _lipschitz(epochs: int = 2, **changes: object) -> TrainConfig:
    base = TrainConfig.preset("certified", "lipschitz")
    return dataclasses.replace(base, epochs=epochs, **changes)  # type: ignore[arg-type]


def _train(
    config: TrainConfig, data: tuple[Dataset, Dataset], folder: Path, resume: bool = False
) -> TrainResult:
    folder.mkdir(exist_ok=True)
    files = RunFiles(folder / "m.ckpt", folder / "m.log.jsonl")
    return train(config, *data, files, RunOptions(torch.device("cpu"), resume=resume))


def _weights(model: nn.Module) -> dict[str, bytes]:
    return {k: v.detach().numpy().tobytes() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("make", [_certified, _lipschitz], ids=["certified", "lipschitz"])
def test_same_seed_same_weights_and_resume_bit_for_bit(
    make: object, data: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    assert callable(make)
    a = _train(make(epochs=3), data, tmp_path / "a")
    b = _train(make(epochs=3), data, tmp_path / "b")
    c = _train(make(epochs=3, seed=1), data, tmp_path / "c")
    assert _weights(a.model) == _weights(b.model) != _weights(c.model)
    first = _train(make(epochs=2), data, tmp_path / "split")
    assert first.epochs_done == 2
    resumed = _train(make(epochs=3), data, tmp_path / "split", resume=True)
    assert (resumed.resumed_from, resumed.epochs_done) == (2, 3)
    assert _weights(resumed.model) == _weights(a.model)
    assert [r["ce"] for r in resumed.history] == [r["ce"] for r in a.history]


def test_resume_refuses_another_schedule(data: tuple[Dataset, Dataset], tmp_path: Path) -> None:
    _train(_certified(epochs=1), data, tmp_path)
    other = dataclasses.replace(_certified(epochs=2), certified=CertifiedConfig(ramp_epochs=5))
    with pytest.raises(InputError, match=r"cannot resume with different settings .*certified"):
        _train(other, data, tmp_path, resume=True)


def test_lipschitz_training_keeps_the_bound(data: tuple[Dataset, Dataset], tmp_path: Path) -> None:
    result = _train(_lipschitz(epochs=2, lipschitz=LipschitzConfig(3.0)), data, tmp_path)
    assert lipschitz_bound(result.model) <= 3.0
    assert result.history[-1]["test_acc"] is not None


@pytest.mark.parametrize("prop", ["cr", "sr", "scr"])
def test_certified_training_certifies_more_regions(
    prop: str, data: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    """At full ε (epochs 3+) the certified loss falls and more regions are proved."""
    config = dataclasses.replace(_certified(epochs=6, prop=prop, eps=0.03), lr=3e-3)
    result = _train(config, data, tmp_path)
    log = [json.loads(line) for line in (tmp_path / "m.log.jsonl").read_text().splitlines()]
    assert log[0]["sat_fraction"] is None  # warm-up: ε = 0, nothing bounded
    assert all(r["sat_fraction"] is not None for r in log[1:])
    assert log[-1]["constraint_loss"] < log[2]["constraint_loss"]
    assert log[-1]["sat_fraction"] > log[2]["sat_fraction"]
    assert float(str(result.history[-1]["test_acc"])) > 0.3


def test_schedule_ramps_eps_kappa_and_the_crown_weight() -> None:
    regime = Certified(
        make_property("cr", eps=0.2),
        Domain(),
        CertifiedConfig(warmup_epochs=2, ramp_epochs=4, kappa_start=1.0, kappa_end=0.0),
    )
    seen = []
    for epoch in range(1, 9):
        regime.start_epoch(epoch, 2)
        for _ in range(2):
            seen.append(regime.weights())
            regime.clock.step += 1
    eps = [round(w[0], 6) for w in seen]
    assert eps[:5] == [0.0] * 5  # epochs 1, 2 and the first step of 3
    assert eps[5:12] == [0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175]
    assert eps[12:] == [0.2] * 4
    assert [round(w[1], 6) for w in seen][12:] == [0.0] * 4
    assert [round(w[2], 6) for w in seen][:5] == [1.0] * 5 and seen[-1][2] == 0.0
    ibp = Certified(make_property("cr"), Domain(), CertifiedConfig(bound="ibp"))
    ibp.start_epoch(5, 1)
    assert ibp.weights()[2] == 0.0
    assert ibp.region(torch.zeros(2, 3)) is not None
    ibp.start_epoch(1, 1)
    assert ibp.region(torch.zeros(2, 3)) is None


def test_certified_batch_reports_bounds(data: tuple[Dataset, Dataset]) -> None:
    from robustprop.training.models import build_model

    torch.manual_seed(0)
    model = build_model("mlp", data[0].n_inputs, 10)
    regime = Certified(make_property("cr", eps=0.01), Domain(), CertifiedConfig(ramp_epochs=1))
    regime.start_epoch(3, 1)
    x, y = torch.from_numpy(data[0].x[:32]), torch.from_numpy(data[0].y[:32])
    out = regime.batch(model, x, y, regime.region(x), torch.Generator())
    stats = dict(zip(STATS, out.stats.tolist(), strict=True))
    assert stats["sampled"] == 32 and 0 <= stats["satisfied"] <= 32
    assert out.loss.requires_grad


@pytest.mark.parametrize(
    ("regime", "prop", "changes", "message"),
    [
        ("certified", None, {}, "certified regime needs a property: cr, sr or scr"),
        ("certified", "lr", {}, "for lr use the lipschitz regime"),
        ("baseline", None, {"certified": CertifiedConfig()}, "certified settings are for"),
        ("certified", "cr", {"lipschitz": LipschitzConfig()}, "lipschitz settings are for"),
    ],
)
def test_config_mismatches(
    regime: str, prop: str | None, changes: dict[str, object], message: str
) -> None:
    built = None if prop is None else make_property(prop)
    with pytest.raises(InputError, match=message):
        base = TrainConfig.paper(regime, prop=built)  # type: ignore[arg-type]
        dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bound": "crown"}, "unknown bound method 'crown'"),
        ({"warmup_epochs": -1}, "warmup_epochs must be an integer >= 0, got -1"),
        ({"ramp_epochs": 0}, "ramp_epochs must be an integer >= 1, got 0"),
        ({"kappa_end": 1.5}, "kappa_end must lie in \\[0, 1\\], got 1.5"),
        ({"kappa_start": float("nan")}, "kappa_start must be finite"),
    ],
)
def test_certified_settings_are_validated(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        CertifiedConfig(**changes)  # type: ignore[arg-type]


def test_paper_regimes_serialise_as_before() -> None:
    """No new keys for the paper's regimes: committed networks are still recognised."""
    for regime, prop in (("baseline", None), ("constraint", "sr")):
        config = TrainConfig.paper(regime, prop=None if prop is None else make_property(prop))  # type: ignore[arg-type]
        assert "certified" not in config.describe() and "lipschitz" not in config.describe()
        assert "regime_params" not in config.metadata()
    certified = _certified()
    assert (
        certified.describe()["certified"]
        == CertifiedConfig(warmup_epochs=1, ramp_epochs=1).describe()
    )
    assert json.loads(certified.metadata()["regime_params"])["bound"] == "crown-ibp"
    assert json.loads(_lipschitz().metadata()["regime_params"]) == {
        "bound": 10.0,
        "projection": "rows",
        "logit_scale": 10.0,
    }
    with pytest.raises(InputError, match="unknown preset 'fast'"):
        TrainConfig.preset("fast", "baseline")
