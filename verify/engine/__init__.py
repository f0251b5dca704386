"""The exact engine: whether one network satisfies one property on one region, and why.

The lowest layer of :mod:`robustprop.verify` (below ``formats``, ``runs``, ``report``,
``experiment`` and ``cli``; it imports none of them). :mod:`~.network` reads ONNX models into a
piecewise-linear IR; :mod:`~.crown` and :mod:`~.bounds` bound it, :mod:`~.lr_local` decides LR's
small linear ball, :mod:`~.falsify` and :mod:`~.attack` search for counterexamples; the exact
backends in :mod:`~.backends` decide a negation, :mod:`~.screen` keeps from them what sound
bounds decide and what lies beyond their calibrated numerical range, :mod:`~.decide` trusts
their points only after onnxruntime replay (:mod:`~.replay`) in isolated processes
(:mod:`~.isolation`),
:mod:`~.scr_encoding` decides SCR with linear queries, and :mod:`~.point_query` turns one query
into a :class:`~.verdict.Verdict`. Every outcome, of a solver query or of a whole point, is a
:class:`~.verdict.Status` (holds, violated, unknown). Nothing is imported here: the submodules
differ a lot in what they cost to import (torch, solvers), so import the one you need.
"""

__all__: list[str] = []
