"""Hypothesis strategies shared by the properties tests: random batches and properties."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st
from torch import Tensor

from robustprop.properties import CR, LR, SCR, SR, Property, References


@st.composite
def batches(draw: st.DrawFn) -> tuple[Tensor, Tensor, Tensor, References]:
    """Random ``(x, y, centers, refs)``, float64, with some exact ties and zero distances."""
    b = draw(st.integers(1, 4))
    n = draw(st.integers(1, 3))
    m = draw(st.integers(1, 4))
    small = st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    values = st.one_of(small, st.floats(-100.0, 100.0))

    def tensor(*shape: int) -> Tensor:
        flat = draw(st.lists(values, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        return torch.tensor(flat, dtype=torch.float64).reshape(shape)

    classes = torch.tensor(draw(st.lists(st.integers(0, m - 1), min_size=b, max_size=b)))
    return tensor(b, n), tensor(b, m), tensor(b, n), References(tensor(b, m), classes)


def properties_() -> st.SearchStrategy[Property]:
    """Any of the four properties, with nice and random parameters."""
    nice = st.sampled_from([0.5, 1.0, 2.0, 10.0])
    return st.one_of(
        st.builds(SR, delta=st.one_of(nice, st.floats(1e-3, 200.0))),
        st.builds(LR, lipschitz=st.one_of(nice, st.floats(1e-3, 200.0))),
        st.builds(CR),
        st.builds(SCR, eta=st.floats(0.51, 0.99)),
    )
