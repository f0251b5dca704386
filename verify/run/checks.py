"""What a run checks about its own verdicts before it reports them.

- :func:`overrule_stored`: a verdict reused from the store (an untrusted cache) that this run's
  own evidence contradicts — a replayed violation at the center, by PGD or by a uniform
  sample — is replaced by that evidence: the store was wrong (forged, or from a buggy run),
  and that is no bug of this run.
- :func:`invariants` (DESIGN.md §3): a ``holds`` this run established never meets a confirmed
  violation, and every ``violated`` carries its witness; a breach is a bug (exit 3).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from robustprop.verify.engine.verdict import Status, Verdict
from robustprop.verify.run.result import PointResult

__all__ = ["invariants", "overrule_stored"]


def overrule_stored(
    verdicts: Mapping[int, Verdict], reused: Collection[int], evidence: Mapping[int, Verdict]
) -> dict[int, Verdict]:
    """The reused ``holds`` / ``unknown`` verdicts that ``evidence`` (replayed violations of
    this run, by point) contradicts, replaced by that evidence."""
    return {
        i: evidence[i]
        for i in reused
        if i in evidence and i in verdicts and verdicts[i].status is not Status.VIOLATED
    }


def invariants(points: Sequence[PointResult], sample_witness: Mapping[int, bool]) -> list[str]:
    """DESIGN.md §3: ``holds`` never meets a confirmed violation; ``violated`` has a witness."""
    breaches: list[str] = []
    for i, p in enumerate(points):
        v = p.verdict
        if v is None:
            continue
        if v.status is Status.HOLDS and p.attack_violated:
            breaches.append(f"point {p.index}: proved holds, but PGD found a confirmed violation")
        if v.status is Status.HOLDS and sample_witness.get(i):
            breaches.append(
                f"point {p.index}: proved holds, but a uniform sample is a confirmed violation"
            )
        if v.status is Status.VIOLATED and v.witness is None:
            breaches.append(f"point {p.index}: violated without a witness")
    return breaches
