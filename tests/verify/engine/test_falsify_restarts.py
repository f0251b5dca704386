"""The falsifier's restarts over the whole box: it finds the ACAS Xu counterexamples that the
PGD-only search missed (5_3/prop_2, 1_9/prop_7) in seconds, every candidate replays with
onnxruntime, and :func:`falsify_boxes` searches many sub-boxes in one batch."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from robustprop.properties.errors import InputError
from robustprop.properties.spec import Negation
from robustprop.verify.engine import falsify as falsify_module
from robustprop.verify.engine.falsify import FalsifyConfig, falsify, falsify_boxes
from robustprop.verify.engine.network import Network, load_network
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.torch_net import to_torch
from robustprop.verify.formats.vnnlib import read_vnnlib
from robustprop.verify.run.stages import confirm

ACAS = Path(__file__).resolve().parents[4] / "shared" / "benchmarks" / "vnncomp" / "acasxu"

pytestmark = pytest.mark.skipif(not ACAS.is_dir(), reason="../shared/benchmarks is absent")


def instance(net: str, prop: int) -> tuple[Network, Negation, Replayer]:
    path = ACAS / "onnx" / f"ACASXU_run2a_{net}_batch_2000.onnx"
    network = load_network(path)
    negation = read_vnnlib(ACAS / "vnnlib" / f"prop_{prop}.vnnlib", network.n, network.m).negation
    assert negation is not None
    return network, negation, Replayer(path.read_bytes(), source=str(path))


@pytest.mark.parametrize(("net", "prop"), [("5_3", 2), ("1_9", 7)])
def test_finds_the_sat_instances_the_old_search_missed(net: str, prop: int) -> None:
    network, negation, replayer = instance(net, prop)
    t0 = time.monotonic()
    found = falsify(network, negation, FalsifyConfig(time_s=20.0))
    elapsed = time.monotonic() - t0
    assert found, f"no candidate in {elapsed:.1f} s"
    assert elapsed < 10.0  # typically under 2 s on an idle core; the machine may be loaded
    for x in found:  # every candidate replays: onnxruntime float32 and float64
        assert confirm(replayer, x, negation) is not None


def test_old_search_misses_5_3_prop_2() -> None:
    """Without the sampled starts and elite restarts (interior starts only), the search of
    the same effort finds nothing: the restarts are what find it."""
    network, negation, _ = instance("5_3", 2)
    old = FalsifyConfig(samples=64, edge_probability=0.0, elite=0, step_fraction=0.05, rounds=8)
    assert falsify(network, negation, old) == []


def test_sub_boxes_in_one_batch() -> None:
    network, negation, replayer = instance("1_9", 7)
    box = negation.disjuncts[0]
    # four slabs along X_3; the known counterexamples have X_3 near 0.25
    cuts = np.linspace(box.lower[3], box.upper[3], 5)
    lowers = np.repeat(box.lower[None, :], 4, axis=0)
    uppers = np.repeat(box.upper[None, :], 4, axis=0)
    lowers[:, 3], uppers[:, 3] = cuts[:-1], cuts[1:]
    found = falsify_boxes(network, negation, lowers, uppers, FalsifyConfig(time_s=20.0))
    assert len(found) == 4 and any(x is not None for x in found)
    for b, x in enumerate(found):
        if x is None:
            continue
        assert np.all(lowers[b] <= x) and np.all(x <= uppers[b])
        assert confirm(replayer, x, negation) is not None
    outside = lowers.copy()
    outside[0, 0] = box.lower[0] - 1.0
    with pytest.raises(InputError, match="sub-box 0"):
        falsify_boxes(network, negation, outside, uppers)


def test_unsat_instance_gives_nothing_within_its_rounds() -> None:
    network, negation, _ = instance("1_6", 3)
    t0 = time.monotonic()
    assert falsify(network, negation, FalsifyConfig(rounds=2, time_s=30.0)) == []
    assert time.monotonic() - t0 < 10.0  # two rounds, not the 30 s allowed
    lowers = np.array([d.lower for d in negation.disjuncts])
    uppers = np.array([d.upper for d in negation.disjuncts])
    assert falsify_boxes(network, negation, lowers, uppers, FalsifyConfig(rounds=1)) == [None]


def test_many_sub_boxes_share_a_bounded_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the cap of coordinates held at once, each sub-box gets fewer samples and starts
    (down to one), never a bigger batch; the candidates still replay."""
    network, negation, replayer = instance("1_9", 7)
    box = negation.disjuncts[0]
    lowers = np.repeat(box.lower[None, :], 40, axis=0)
    uppers = np.repeat(box.upper[None, :], 40, axis=0)
    monkeypatch.setattr(falsify_module, "MAX_SAMPLE_VALUES", 40 * 5 * 3)
    score = falsify_module._BoxScore.of(network.m, negation.disjuncts)
    search = falsify_module._Search(to_torch(network), score, lowers, uppers, FalsifyConfig())
    assert (search.starts, search.samples) == (3, 3)
    found = falsify_boxes(network, negation, lowers, uppers, FalsifyConfig(rounds=3))
    assert len(found) == 40
    assert all(x is None or confirm(replayer, x, negation) is not None for x in found)
