"""robustprop.verify: decide robustness properties of ONNX networks, and report on them.

Layers, bottom to top; a layer imports only the layers below it:

1. :mod:`~robustprop.verify.engine` — networks, bounds, attacks and the exact backends that
   decide one point;
2. :mod:`~robustprop.verify.formats` — VNN-LIB reading and writing, atomic output files;
3. :mod:`~robustprop.verify.run` — runs over many points: runner, worker pools, the verdict
   store, point selection;
4. :mod:`~robustprop.verify.report` — the run document (JSON), JUnit XML, Markdown/HTML
   reports and their figures;
5. :mod:`~robustprop.verify.experiment` — the paper's experiment: training grid,
   measurements, claims, its report;
6. :mod:`~robustprop.verify.cli` — the ``verify`` command line.

This package imports nothing itself: import what you need from its layers.
"""

__all__: list[str] = []
