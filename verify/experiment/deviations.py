"""Why a regime's Table 2 accuracy is off the paper's: the evidence, measured, per cell.

A dataset-wide offset (GTSRB's official test set against the paper's frame-level split,
``grid.TABLE2_NOTES``) moves every regime alike, so a regime is compared *relative to its own
baseline*: ``(ours − our baseline) − (paper − paper's baseline)``. Where that differs by more
than :data:`TOLERANCE` points, the report prints the regime's cause next to numbers from this
run: the share of the loss its training puts on perturbed points, its training log (accuracy
still rising at the last epoch, the constraint's satisfied fraction) and its measured SR
security against the baseline's. A deviation without a known cause says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from robustprop.verify.experiment.grid import PAPER_ACCURACY, TrainedNet
from robustprop.verify.experiment.measure import Row

__all__ = ["TOLERANCE", "table2_deviations"]

#: Points of test accuracy, relative to the baseline, that Table 2 is allowed to differ by.
TOLERANCE: Final[float] = 1.5

#: Test-accuracy points gained over the second half of training that mark a run as unconverged.
_STILL_RISING: Final[float] = 2.0

#: What the regime's training does that moves its accuracy, in the paper's preset
#: (α = 1, β = 0.2, ε = 0.1, two extra points per image for augmentation).
_CAUSES: Final[Mapping[str, str]] = {
    "augment-fgsm": (
        "the paper's text ('adds 2 additional images in the 0.1-ε-ball', FGSM) puts two FGSM "
        "points at ε = 0.1 beside each image with the image's own weight, so 2/3 of the loss "
        "is on FGSM points: heavier adversarial training than the adversarial regime's "
        "β/(α + β) = 1/6. The paper's augmented network is *less* secure than its baseline "
        "(its Figure 4, claim E3c) and more accurate, which points to weaker perturbations "
        "than the ones its text describes. Retrained at ε = 0.01, everything else equal, "
        "this regime lands within 1.5 points of the paper on both data sets: GTSRB +0.6 "
        "against the baseline (paper +2.1), Fashion-MNIST +0.1 (paper +0.6); at ε = 0.03 "
        "GTSRB −4.1 (results/regime-strength/)"
    ),
    "adversarial": (
        "the paper's preset weights the FGSM term by β = 0.2 against α = 1 for the clean "
        "image, 1/6 of the loss; the paper's network lost far more accuracy to adversarial "
        "training than that weight costs here, so its adversarial term must have weighed "
        "more (§4 speaks of an '11% drop'). Retrained with β = 1, everything else equal, it "
        "loses what the paper's lost: GTSRB −10.7 points against the baseline (paper −8.9), "
        "Fashion-MNIST −2.6 (paper −3.1) (results/regime-strength/)"
    ),
    "constraint-lr": (
        "LR(ε = 0.1, L = 10) is violated at every training point the PGD inner search "
        "visits, so the constraint term never vanishes and pulls against the cross-entropy "
        "on every batch; the exact verifier refutes LR at every test point of every network "
        "(Lipschitz section)"
    ),
    "constraint-sr": (
        "SR(δ = 10) stops holding at part of the training points as the network sharpens, "
        "and from then on the constraint term pulls against the cross-entropy; the paper's "
        "constraint-trained network is as accurate as its baseline or more"
    ),
}


def table2_deviations(nets: Sequence[TrainedNet], curves: Sequence[Row]) -> list[str]:
    """One Markdown paragraph per Table 2 cell off the paper's by more than
    :data:`TOLERANCE` points relative to its baseline."""
    base = {n.dataset: n for n in nets if n.spec.key == "baseline"}
    base_rise = {dataset: _rise(_epochs(b.path)) for dataset, b in base.items()}
    out: list[str] = []
    for n in nets:
        paper = PAPER_ACCURACY.get(n.dataset, {})
        if n.spec.key == "baseline" or n.spec.key not in paper or n.dataset not in base:
            continue
        ours_gain = 100 * (n.test_accuracy - base[n.dataset].test_accuracy)
        paper_gain = paper[n.spec.key] - paper["baseline"]
        off = ours_gain - paper_gain
        if not math.isfinite(off) or abs(off) <= TOLERANCE:
            continue
        text = (
            f"**{n.spec.label} ({n.dataset})**: {ours_gain:+.1f} points against our baseline, "
            f"the paper's {paper_gain:+.1f} against its own ({off:+.1f}, beyond ±{TOLERANCE})."
        )
        cause = _CAUSES.get(n.spec.key)
        text += (
            f" Cause: {cause}."
            if cause
            else " No cause measured: this run has no explanation for it."
        )
        evidence = _log_evidence(_epochs(n.path), base_rise[n.dataset])
        evidence += _security_evidence(n, curves)
        if evidence:
            text += " Measured: " + "; ".join(evidence) + "."
        out.append(text)
    return out


def _epochs(onnx: Path) -> list[dict[str, Any]]:
    """The training log beside the ONNX file, one record per epoch ([] when unreadable)."""
    try:
        lines = onnx.with_name(onnx.stem + ".log.jsonl").read_text().strip().splitlines()
        return [json.loads(line) for line in lines]
    except (OSError, ValueError):
        return []


def _rise(epochs: list[dict[str, Any]]) -> float | None:
    """Test-accuracy points gained over the second half of training."""
    try:
        last, mid = epochs[-1], epochs[len(epochs) // 2 - 1]
        return 100 * (float(last["test_acc"]) - float(mid["test_acc"]))
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _log_evidence(epochs: list[dict[str, Any]], baseline_rise: float | None) -> list[str]:
    """The training log's last epoch against its middle one."""
    try:
        last, mid = epochs[-1], epochs[len(epochs) // 2 - 1]
        facts = [
            f"train accuracy {100 * float(mid['train_acc']):.1f} % at epoch {mid['epoch']} → "
            f"{100 * float(last['train_acc']):.1f} % at epoch {last['epoch']}, test "
            f"{100 * float(mid['test_acc']):.1f} → {100 * float(last['test_acc']):.1f} %"
        ]
        rise = _rise(epochs)
        if rise is not None and baseline_rise is not None and rise - baseline_rise > _STILL_RISING:
            facts.append(
                f"still rising faster than the baseline over the second half ({rise:+.1f} "
                f"points against {baseline_rise:+.1f}): the schedule ends before this regime "
                "converges"
            )
        if last.get("constraint_loss"):
            facts.append(
                f"constraint satisfied at {100 * float(last['sat_fraction']):.1f} % of the "
                f"last epoch's training points (loss {float(last['constraint_loss']):.3f})"
            )
    except (KeyError, IndexError, TypeError, ValueError):
        return []
    return facts


def _security_evidence(net: TrainedNet, curves: Sequence[Row]) -> list[str]:
    """Mean SR security of the network against its dataset's baseline, over the curves' ε."""

    def mean_sr(regime: str) -> float | None:
        vals = [
            r.security
            for r in curves
            if r.dataset == net.dataset and r.regime == regime and r.prop == "sr"
            if r.security is not None
        ]
        return sum(vals) / len(vals) if vals else None

    ours, base = mean_sr(net.spec.key), mean_sr("baseline")
    if ours is None or base is None:
        return []
    return [f"mean SR security {ours:.3f} against the baseline's {base:.3f}"]
