"""Training: data sets, models, regimes (baseline, augmentation, adversarial, constraint loss),
the training loop with resumable checkpoints. Modules are imported by name
(:mod:`robustprop.training.loop`, :mod:`robustprop.training.data`, ...)."""

__all__: list[str] = []
