"""The empirical readings of a run: PGD on data points (security) and uniform samples of
their regions (accuracy), batched, on the torch copy of the IR.

Candidates found here are only candidates: the runner replays them with onnxruntime
(:func:`robustprop.verify.run.stages.confirm`) before they count as violations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from robustprop.lazy import load
from robustprop.properties import Domain, PGDConfig, Property, References
from robustprop.properties.spec import FloatArray
from robustprop.verify.engine.attack import batched_attack

if TYPE_CHECKING:
    import torch

__all__ = ["PointAttack", "attack_points", "sample_points"]

#: Points per PGD batch.
ATTACK_BATCH = 64


@dataclass(frozen=True, eq=False)
class PointAttack:
    """The best PGD point of one data point and the property's margin there."""

    x: FloatArray
    margin: float


def attack_points(
    prop: Property,
    model: torch.nn.Module,
    centers: FloatArray,
    refs: References,
    indices: Sequence[int],
    domain: Domain,
    config: PGDConfig,
    generator: torch.Generator,
    device: str = "cpu",
) -> list[PointAttack]:
    """PGD on the rows ``indices`` of ``centers`` (their references in ``refs``), in batches."""
    torch = load("torch")
    out: list[PointAttack] = []
    for lo in range(0, len(indices), ATTACK_BATCH):
        part = torch.as_tensor(list(indices[lo : lo + ATTACK_BATCH]), dtype=torch.int64)
        x0 = torch.from_numpy(centers[part.numpy()]).to(device, torch.float32)
        sub = References(refs.scores[part].to(device, torch.float32), refs.classes[part].to(device))
        found = batched_attack(prop, model, x0, sub, domain, config, generator)
        xs = found.x.double().cpu().numpy()
        values = found.value.cpu().numpy()
        out += [PointAttack(xs[k], float(values[k])) for k in range(part.numel())]
    return out


def sample_points(
    prop: Property,
    model: torch.nn.Module,
    centers: FloatArray,
    refs: References,
    domain: Domain,
    samples: int,
    seed: int,
) -> list[tuple[float, FloatArray | None]]:
    """Per point: the fraction of uniform samples of its region where the predicate holds,
    and the first sample where it fails (None: none failed)."""
    torch = load("torch")
    generator = torch.Generator().manual_seed(seed)
    out: list[tuple[float, FloatArray | None]] = []
    n_points, n_inputs = centers.shape
    chunk = max(1, 200_000 // max(1, samples * max(1, n_inputs // 100)))
    for lo in range(0, n_points, chunk):
        hi = min(lo + chunk, n_points)
        x0 = torch.from_numpy(centers[lo:hi]).to(torch.float32)
        xs = prop.region(x0, domain).sample(samples, generator)  # (b, k, n)
        b, k, n = xs.shape
        flat = xs.reshape(b * k, n)
        with torch.no_grad():
            ys = model(flat)
        sub = References(
            refs.scores[lo:hi].to(torch.float32).repeat_interleave(k, dim=0),
            refs.classes[lo:hi].repeat_interleave(k, dim=0),
        )
        ok = prop.predicate(flat, ys, x0.repeat_interleave(k, dim=0), sub).reshape(b, k)
        for r in range(b):
            bad = torch.nonzero(~ok[r]).flatten()
            first = None if not bad.numel() else np.asarray(xs[r, int(bad[0])].double().numpy())
            out.append((float(ok[r].float().mean()), first))
    return out
