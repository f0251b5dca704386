"""Each property's attack objectives agree with its predicate.

``objectives`` is the margin followed by the targets; a target signals a violation only where
the predicate fails, so ``violated(max over objectives) == not predicate``; for SR, LR and CR the
targets split the margin exactly (their maximum is the margin); each target climbs the direction
it names.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given, settings
from torch import Tensor

from robustprop.properties import CR, LR, SCR, SR, Property, References
from tests.properties.strategies import batches, properties_

SETTINGS = settings(deadline=None, max_examples=200)
Batch = tuple[Tensor, Tensor, Tensor, References]


def _near_scr_boundary(prop: Property, batch: Batch) -> bool:
    """SCR's targets compare ``y_j − y_c`` with ``log(1/η − 1)``, its predicate compares
    ``softmax(y)_c`` with ``η``: both exact in reals, they may round apart within ulps."""
    if not isinstance(prop, SCR):
        return False
    x, y, centers, refs = batch
    return bool((prop.margin(x, y, centers, refs).abs() < 1e-9).any())


@SETTINGS
@given(properties_(), batches())
def test_objectives_are_the_margin_then_the_targets(prop: Property, batch: Batch) -> None:
    x, y, centers, refs = batch
    b, m = y.shape
    objectives = prop.objectives(x, y, centers, refs)
    targets = prop.targets(x, y, centers, refs)
    assert objectives.shape == (b, 1 + (m if isinstance(prop, CR | SCR) else 2 * m))
    assert torch.equal(objectives[:, 0], prop.margin(x, y, centers, refs))
    assert torch.equal(objectives[:, 1:], targets)


@SETTINGS
@given(properties_(), batches())
def test_a_violated_target_is_a_violation(prop: Property, batch: Batch) -> None:
    assume(not _near_scr_boundary(prop, batch))
    x, y, centers, refs = batch
    holds = prop.predicate(x, y, centers, refs)
    for column in prop.targets(x, y, centers, refs).T:
        assert not bool((prop.violated(column) & holds).any())


@SETTINGS
@given(properties_(), batches())
def test_the_best_objective_is_violated_exactly_where_the_predicate_fails(
    prop: Property, batch: Batch
) -> None:
    assume(not _near_scr_boundary(prop, batch))
    x, y, centers, refs = batch
    best = prop.objectives(x, y, centers, refs).amax(dim=1)
    assert torch.equal(prop.violated(best), ~prop.predicate(x, y, centers, refs))


@SETTINGS
@given(properties_().filter(lambda p: not isinstance(p, SCR)), batches())
def test_piecewise_linear_targets_split_the_margin(prop: Property, batch: Batch) -> None:
    x, y, centers, refs = batch
    targets = prop.targets(x, y, centers, refs)
    assert torch.equal(targets.amax(dim=1), prop.margin(x, y, centers, refs))


@pytest.mark.parametrize("prop", [SR(delta=0.5), LR(lipschitz=3.0), CR(), SCR(eta=0.7)])
def test_each_target_climbs_the_direction_it_names(prop: Property) -> None:
    """d target / d y: ``±e_j`` (SR, LR: output ``j`` up or down), ``e_j − e_c`` (CR, SCR)."""
    g = torch.Generator().manual_seed(0)
    y = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    x = torch.rand(3, 2, generator=g, dtype=torch.float64)
    refs = References(torch.randn(3, 4, generator=g, dtype=torch.float64), torch.tensor([0, 2, 3]))
    targets = prop.targets(x, y, x.clone(), refs)
    eye = torch.eye(4, dtype=torch.float64)
    for column in range(targets.shape[1]):
        (grad,) = torch.autograd.grad(targets[:, column].sum(), y, retain_graph=True)
        for b in range(3):
            c = int(refs.classes[b])
            if isinstance(prop, CR | SCR):
                expected = (
                    torch.zeros(4, dtype=torch.float64) if column == c else eye[column] - eye[c]
                )
            else:
                expected = (1.0 if column % 2 == 0 else -1.0) * eye[column // 2]
            assert torch.equal(grad[b], expected), (column, b)


def test_class_targets_mask_the_reference_class() -> None:
    y = torch.tensor([[1.0, 3.0, 2.0]], dtype=torch.float64)
    refs = References(y.clone(), torch.tensor([1]))
    x = torch.zeros(1, 2, dtype=torch.float64)
    assert CR().targets(x, y, x, refs).tolist() == [[-2.0, -math.inf, -1.0]]
    shift = math.log(1 / 0.75 - 1)
    assert SCR(eta=0.75).targets(x, y, x, refs).tolist() == [
        [-2.0 - shift, -math.inf, -1.0 - shift]
    ]


def test_output_targets_move_each_output_both_ways() -> None:
    y = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    refs = References(torch.tensor([[0.5, 0.0]], dtype=torch.float64), torch.tensor([0]))
    x = torch.tensor([[0.25]], dtype=torch.float64)
    centers = torch.tensor([[0.0]], dtype=torch.float64)
    assert SR(delta=1.0).targets(x, y, centers, refs).tolist() == [[-0.5, -1.5, -3.0, 1.0]]
    # LR subtracts L·‖x − x̂‖∞ = 2 · 0.25 from every column
    assert LR(lipschitz=2.0).targets(x, y, centers, refs).tolist() == [[0.0, -1.0, -2.5, 1.5]]
