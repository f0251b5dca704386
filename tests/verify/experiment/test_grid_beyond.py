"""The regimes beyond the paper in the experiment grid, and reuse of the paper's networks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustprop.export.metadata import read_metadata
from robustprop.verify.experiment.grid import (
    BEYOND,
    REGIMES,
    GridConfig,
    _reusable,
    train_config,
)

BASELINE = Path(__file__).parents[3] / "results" / "networks" / "fashion-mnist" / "baseline.onnx"


@pytest.mark.parametrize("epochs", [1, 4, 100])
def test_beyond_cells_fit_their_schedule_into_the_grid(epochs: int) -> None:
    grid = GridConfig(epochs=epochs, lr=1e-3)
    keys = [spec.key for spec in BEYOND]
    assert keys == ["certified-cr", "certified-sr", "certified-scr", "lipschitz"]
    for spec in BEYOND:
        config = train_config(spec, grid)
        assert (config.regime, config.epochs, config.lr) == (spec.regime, epochs, 1e-3)
        if config.regime == "certified":
            assert config.prop is not None and config.prop.name == spec.prop
            assert config.prop.eps == 0.1
            assert config.certified is not None
            done = config.certified.warmup_epochs + config.certified.ramp_epochs
            assert done <= epochs  # ε reaches 0.1 within the run
        else:
            assert config.lipschitz is not None and config.lipschitz.bound == 10.0
    assert not {s.key for s in BEYOND} & {s.key for s in REGIMES}


def test_paper_cells_are_unchanged() -> None:
    for spec in REGIMES:
        described = train_config(spec, GridConfig()).describe()
        assert "certified" not in described and "lipschitz" not in described


@pytest.mark.skipif(not BASELINE.is_file(), reason="committed networks not in this checkout")
def test_the_committed_baseline_is_still_reused() -> None:
    meta = read_metadata(BASELINE)
    training = json.loads(meta["training"])
    grid = GridConfig(epochs=int(meta["epochs"]), lr=training["lr"])
    assert _reusable(BASELINE, train_config(REGIMES[0], grid), "fashion-mnist") is not None
