"""Parameter validation, the registry and the public names."""

from __future__ import annotations

import dataclasses
import math
import types

import pytest

import robustprop.properties
from robustprop.properties import CR, LR, PROPERTIES, SCR, SR, InputError, make_property


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("sr", {"eps": -0.1}, "eps must be > 0, got -0.1"),
        ("sr", {"eps": 0}, "eps must be > 0, got 0"),
        ("sr", {"eps": math.nan}, "eps must be finite, got nan"),
        ("sr", {"delta": 0.0}, "delta must be > 0, got 0.0"),
        ("sr", {"delta": math.inf}, "delta must be finite, got inf"),
        ("lr", {"lipschitz": -3}, "lipschitz must be > 0, got -3"),
        ("lr", {"lipschitz": "10"}, "lipschitz must be a number, got '10'"),
        ("scr", {"eta": 1.0}, r"eta must lie in \(0, 1\), got 1.0"),
        ("scr", {"eta": 0.0}, r"eta must lie in \(0, 1\), got 0.0"),
        ("scr", {"eta": math.nan}, "eta must be finite, got nan"),
        ("cr", {"reference": "onehot"}, "reference must be one of .*, got 'onehot'"),
        ("cr", {"eps": True}, "eps must be a number, got True"),
    ],
)
def test_invalid_parameters(name: str, params: dict[str, float | str], message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        make_property(name, **params)
    assert info.value.exit_code == 2


def test_defaults_are_the_papers() -> None:
    assert SR() == SR(eps=0.1, delta=10.0, reference="output")
    assert LR().lipschitz == 10.0
    assert SCR().eta == 0.52
    assert CR().eps == 0.1


def test_parameters_are_floats_and_frozen() -> None:
    prop = make_property("sr", delta=10)
    assert isinstance(prop, SR) and type(prop.delta) is float
    with pytest.raises(dataclasses.FrozenInstanceError):
        prop.delta = 3.0  # type: ignore[misc]
    assert prop.params() == {"eps": 0.1, "reference": "output", "delta": 10.0}
    assert hash(prop) == hash(SR())


def test_low_eta_warns() -> None:
    with pytest.warns(UserWarning, match="no longer implies CR"):
        SCR(eta=0.5)


def test_registry_table() -> None:
    assert dict(PROPERTIES) == {"sr": SR, "lr": LR, "cr": CR, "scr": SCR}
    for token, cls in PROPERTIES.items():
        assert cls.name == token
        assert isinstance(make_property(token), cls)
    with pytest.raises(TypeError):
        PROPERTIES["xr"] = SR  # type: ignore[index]


def test_registry_unknown_name() -> None:
    with pytest.raises(InputError, match="unknown property 'xr'; valid: sr, lr, cr, scr"):
        make_property("xr")


@pytest.mark.parametrize(("name", "param"), [("lr", "delta"), ("sr", "eta"), ("cr", "delta")])
def test_registry_rejects_foreign_parameters(name: str, param: str) -> None:
    with pytest.raises(InputError, match=f"no parameter {param}"):
        make_property(name, **{param: 1.0})


def test_all_matches_public_names() -> None:
    public = {
        name
        for name, value in vars(robustprop.properties).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(robustprop.properties.__all__) == public
    assert len(robustprop.properties.__all__) == len(set(robustprop.properties.__all__))
