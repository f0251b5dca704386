"""TrainConfig: the paper preset, defaults per regime, and every rejection."""

from __future__ import annotations

import dataclasses
import json

import pytest

from robustprop.properties import PGDConfig, make_property
from robustprop.properties.errors import InputError
from robustprop.training.config import REGIMES, SAMPLERS, TrainConfig


def test_paper_preset() -> None:
    config = TrainConfig.paper("constraint", prop=make_property("sr"))
    assert (config.epochs, config.batch_size, config.lr) == (100, 128, 1e-4)
    assert (config.alpha, config.beta, config.eps) == (1.0, 0.2, 0.1)
    assert config.pgd == PGDConfig(steps=50, step_size=0.01, restarts=1, random_start=True)
    assert config.sampler == "pgd" and config.arch == "mlp" and config.extra_points == 2
    # The property parameters of the paper are the property classes' defaults.
    assert make_property("sr").params()["delta"] == 10.0
    assert make_property("lr").params()["lipschitz"] == 10.0
    assert make_property("scr").params()["eta"] == 0.52


@pytest.mark.parametrize("regime", REGIMES)
def test_default_sampler_is_the_first_listed(regime: str) -> None:
    prop = make_property("scr") if regime in ("constraint", "certified") else None
    config = TrainConfig.paper(regime, prop=prop)  # type: ignore[arg-type]
    allowed = SAMPLERS[regime]
    assert config.sampler == (allowed[0] if allowed else None)


def test_describe_and_metadata_are_json() -> None:
    config = TrainConfig.paper("constraint", prop=make_property("lr", lipschitz=3.0))
    described = config.describe()
    assert json.loads(json.dumps(described)) == described
    assert described["property"] == {
        "name": "lr",
        "eps": 0.1,
        "reference": "output",
        "lipschitz": 3.0,
    }
    meta = config.metadata()
    assert meta["regime"] == "constraint" and meta["property"] == "lr"
    assert json.loads(meta["property_params"])["lipschitz"] == 3.0
    assert json.loads(meta["training"]) == described
    assert "property" not in TrainConfig.paper("baseline").metadata()


@pytest.mark.parametrize(
    ("regime", "prop", "sampler", "message"),
    [
        ("baseline", "sr", None, r"property \(sr\) is trained only by the constraint regime"),
        ("augment", None, "pgd", "regime augment samples with uniform or fgsm, got 'pgd'"),
        ("adversarial", None, "uniform", "adversarial samples with fgsm or pgd"),
        ("baseline", None, "fgsm", "regime baseline takes no sampler"),
        ("constraint", None, None, "constraint regime needs a property: sr, lr or scr"),
        ("constraint", "sr", "fgsm", "constraint samples with pgd"),
        ("constraint", "cr", None, r"CR has no differentiable loss \(it is defined by argmax\)"),
    ],
)
def test_regime_mismatches(
    regime: str, prop: str | None, sampler: str | None, message: str
) -> None:
    built = None if prop is None else make_property(prop)
    with pytest.raises(InputError, match=message):
        TrainConfig.paper(regime, prop=built, sampler=sampler)  # type: ignore[arg-type]


def test_cr_message_points_to_scr() -> None:
    with pytest.raises(InputError, match="use scr"):
        TrainConfig.paper("constraint", prop=make_property("cr"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"batch_size": 2.5}, "batch_size must be an integer"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"eps": -0.1}, "eps must be > 0"),
        ({"beta": -1.0}, "beta must be >= 0"),
        ({"alpha": float("nan")}, "alpha must be finite"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"arch": "cnn"}, "unknown architecture 'cnn'"),
        ({"regime": "madry"}, "unknown regime 'madry'"),
        ({"extra_points": 0}, "extra_points must be an integer >= 1"),
    ],
)
def test_bad_values(change: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        dataclasses.replace(TrainConfig.paper("baseline"), **change)  # type: ignore[arg-type]


def test_property_eps_must_match_run_eps() -> None:
    config = TrainConfig.paper("constraint", prop=make_property("sr", eps=0.05))
    assert config.eps == 0.05
    with pytest.raises(InputError, match=r"property's eps=0.05 differs from the run's eps=0.1"):
        dataclasses.replace(config, eps=0.1)
