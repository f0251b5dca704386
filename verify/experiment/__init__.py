"""The paper's experiment (``verify experiment``): train its grid, measure, check its claims.

- :mod:`~robustprop.verify.experiment.train_job` — train one network and export it to ONNX
  (also the body of ``verify train``);
- :mod:`~robustprop.verify.experiment.grid` — the paper's training regimes, trained once;
- :mod:`~robustprop.verify.experiment.measure` — security, accuracy and certified
  satisfaction of one network, cached;
- :mod:`~robustprop.verify.experiment.lipschitz` — what the LR counterexamples look like, and
  whether the paper's PGD finds them;
- :mod:`~robustprop.verify.experiment.parallel` — several networks measured at once (--jobs);
- :mod:`~robustprop.verify.experiment.claims` — the paper's claims checked on the measurements;
- :mod:`~robustprop.verify.experiment.report` — report.md / report.html, CSV tables, with
  :mod:`~robustprop.verify.experiment.figures`,
  :mod:`~robustprop.verify.experiment.lipschitz_report` and
  :mod:`~robustprop.verify.experiment.html_page`;
- :mod:`~robustprop.verify.experiment.pipeline` — all of it in order.

Above :mod:`robustprop.verify.report`, below :mod:`robustprop.verify.cli`.
"""

from robustprop.verify.experiment.claims import Claim, check_claims
from robustprop.verify.experiment.grid import GridConfig, RegimeSpec, TrainedNet
from robustprop.verify.experiment.pipeline import (
    ExperimentConfig,
    quick,
    run_experiment,
    train_grid,
)
from robustprop.verify.experiment.train_job import TrainJob, TrainSummary, train_to_onnx

__all__ = [
    "Claim",
    "ExperimentConfig",
    "GridConfig",
    "RegimeSpec",
    "TrainJob",
    "TrainSummary",
    "TrainedNet",
    "check_claims",
    "quick",
    "run_experiment",
    "train_grid",
    "train_to_onnx",
]
