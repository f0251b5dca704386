"""Architectures: shapes, the output clamp, determinism of initialisation."""

from __future__ import annotations

import pytest
import torch

from robustprop.properties.errors import InputError
from robustprop.training import models
from robustprop.training.models import ARCHITECTURES, CLAMP_BOUND, ClampMLP, build_model

torch.set_num_threads(1)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_shapes(arch: str) -> None:
    model = build_model(arch, 784, 10)
    assert model(torch.rand(5, 784)).shape == (5, 10)


def test_paper_network_is_n_100_m() -> None:
    model = build_model("mlp", 784, 10)
    assert sum(p.numel() for p in model.parameters()) == 784 * 100 + 100 + 100 * 10 + 10
    deep = build_model("mlp-deep", 1024, 43)
    widths = [m.out_features for m in deep.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [256, 128, 43]


def test_output_is_clamped() -> None:
    model = ClampMLP(4, 3)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1000.0)
    out = model(torch.ones(2, 4))
    assert out.max().item() == CLAMP_BOUND
    last = model.layers[-1]
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        last.weight.fill_(-1000.0)
    assert model(torch.ones(2, 4)).min().item() == -CLAMP_BOUND


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_init_is_deterministic_under_seed(arch: str) -> None:
    torch.manual_seed(123)
    a = build_model(arch, 20, 4).state_dict()
    torch.manual_seed(123)
    b = build_model(arch, 20, 4).state_dict()
    torch.manual_seed(124)
    c = build_model(arch, 20, 4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_rejections() -> None:
    with pytest.raises(InputError, match=r"unknown architecture 'cnn'.*mlp, mlp-deep"):
        build_model("cnn", 784, 10)
    with pytest.raises(InputError, match="n_inputs=0"):
        build_model("mlp", 0, 10)


def test_public_names_exist() -> None:
    assert all(hasattr(models, name) for name in models.__all__)
