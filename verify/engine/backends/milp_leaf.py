"""Sub-domains of ReLU splitting handed to the MILP backend's encoding.

β-CROWN's bound of a sub-domain ignores part of its split constraints (their multipliers are
optimised by a few gradient steps only), so a sub-domain whose every unstable ReLU is fixed
can stay open although the network is linear on it. :class:`LeafSolver` decides such a
sub-domain exactly: the network over the group's box, encoded once as for
:class:`~robustprop.verify.engine.backends.milp.MilpBackend`, with the sub-domain's split ReLUs
fixed — the binary of a split neuron set to 1 (active) or 0 (inactive) and the row
``z ≥ 0`` or ``z ≤ 0`` added — is a linear program when every ReLU the encoding left binary
is split, else a MILP over the few free ones. Each disjunct of the group is one program
(HiGHS): all infeasible — the sub-domain is closed; a feasible point is a *candidate* (the
caller replays it with onnxruntime); anything else is unknown.

Trust: the same as the MILP backend's "unsat" (HiGHS at feasibility tolerance 1e-9 over the
IR's bounds); the split constraints are the sub-domain's own, so a closed sub-domain means no
input of it is in the group's negation.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt

from robustprop.properties.spec import FloatArray, Negation
from robustprop.verify.engine.backends.base import import_solver
from robustprop.verify.engine.backends.milp import encode_network, solve_disjunct
from robustprop.verify.engine.network import Network
from robustprop.verify.engine.verdict import Status

__all__ = ["LeafSolver"]


class LeafSolver:
    """One group's network encoding, solved again per sub-domain with its splits fixed."""

    def __init__(self, network: Network, group: Negation) -> None:
        self._highspy: Any = import_solver("highspy", "highspy")
        self.group = group
        self._layers: list[tuple[npt.NDArray[np.int64], FloatArray]] = []
        self._encoded = encode_network(network, group, trace=self._layers)

    def solve(
        self,
        signs: list[npt.NDArray[np.int8]],
        deadline: float,
    ) -> tuple[Status, FloatArray | None, str]:
        """Decide the sub-domain whose split signs are ``signs`` (one array per affine layer,
        ``+1`` active, ``−1`` inactive, 0 free) before ``deadline``: ``HOLDS`` (closed),
        ``VIOLATED`` with a candidate input, or ``UNKNOWN``."""
        if self._encoded is None:
            return Status.HOLDS, None, "empty input box"
        base, outputs = self._encoded
        model = base.copy()
        for (columns, constants), layer_signs in zip(self._layers, signs, strict=False):
            for i in np.flatnonzero(layer_signs):
                sign = int(layer_signs[i])
                z = int(columns[i])
                if z < 0:  # a constant neuron: the split holds or the sub-domain is empty
                    if sign * float(constants[i]) < 0.0:
                        return Status.HOLDS, None, "a split contradicts a constant neuron"
                    continue
                model.fix_relu(z, sign)
        for disjunct in self.group.disjuncts:
            left = deadline - time.monotonic()
            if left <= 0.0:
                return Status.UNKNOWN, None, "time up"
            status, x, reason = solve_disjunct(
                self._highspy, model, outputs, disjunct, left, margin=True
            )
            if status is not Status.HOLDS:
                return status, x, reason
        return Status.HOLDS, None, "every disjunct infeasible"
