"""Running many points: one run's configuration, the staged pipeline shared by ``verify run``
and ``verify vnnlib`` (:mod:`~robustprop.verify.run.stages`), worker pools (local processes,
Ray), the verdict store (an untrusted cache: :mod:`~robustprop.verify.run.reuse`), data
points, the typed :class:`~robustprop.verify.run.summary.Summary` and CI gates, the model
read once (:mod:`~robustprop.verify.run.model`), time limits and signals
(:mod:`~robustprop.verify.run.signals`). Above the engine and the file formats; below the
API, reports and the CLI."""

__all__: list[str] = []
