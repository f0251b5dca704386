"""The exact backends: Marabou, Z3, a HiGHS MILP and the Marabou/MILP portfolio.

:mod:`~.base` holds the contract every backend meets (:class:`Backend`, its
:class:`SolverOutcome`, :class:`BackendName` and the query helpers), one module per backend
encodes a negation for its solver (:mod:`~.marabou`, :mod:`~.z3_backend`, :mod:`~.milp`,
:mod:`~.portfolio`), and :mod:`~.registry` sits above them all:
:func:`~.registry.get_backend` builds a backend by name and :func:`~.registry.choose_backend`
resolves ``auto`` for a network. Solver packages are imported inside the backends' ``solve``, so
importing a backend never needs its solver. Only the light contract is re-exported here; the
registry is imported from its module (it pulls in every backend, and torch for the portfolio's
CROWN seeding).
"""

from robustprop.verify.engine.backends.base import Backend, BackendName, SolverOutcome

__all__ = ["Backend", "BackendName", "SolverOutcome"]
