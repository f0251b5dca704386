"""Running many points: one run's configuration, the staged pipeline shared by ``verify run``
and ``verify vnnlib`` (:mod:`~robustprop.verify.run.stages`), worker pools (local processes,
Ray), the verdict store, data points, the typed :class:`~robustprop.verify.run.summary.Summary`
and CI gates. Above the engine and the file formats; below the API, reports and the CLI."""

__all__: list[str] = []
