"""What one run takes from the verdict store, and what it tells about it.

The store is an untrusted cache (:mod:`robustprop.verify.run.store`): anyone who can write the
file can write a ``holds`` for any point. So a stored verdict is reused only as follows:

- ``violated``: its witness is replayed through onnxruntime against this run's model and
  property first; one that replays is evidence (as good as a fresh attack), one that does not
  is dropped and the point decided afresh;
- ``holds`` and ``unknown`` carry no evidence: they are reused only when the caller allows
  that status (``RunConfig.reuse``; ``verify run`` allows none a gate could rest on, unless
  ``--trust-store``), else the point is decided afresh ("re-decided").

Every reused verdict is marked on its point, and :class:`StoreReport` counts them for the
documents and the printout. A store that becomes busy mid-run is dropped with one warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustprop.verify.engine.verdict import Status, Verdict
from robustprop.verify.run.store import StoreUnavailable, is_reusable, open_store

__all__ = ["ALL_STATUSES", "StoreReport", "StoreSession"]

log = logging.getLogger(__name__)

#: Reuse every stored status (a plain cache: nothing rests on the reused verdicts).
ALL_STATUSES: frozenset[Status] = frozenset(Status)


@dataclass(frozen=True)
class StoreReport:
    """How a run used its store. ``reused``: verdicts taken from it, of which ``replayed``
    were ``violated`` with a witness replayed in this run (evidence) and the rest unchecked
    claims; ``trusted``: the caller said to trust those (``--trust-store``); ``redecided``:
    points whose stored verdicts were not taken; ``contradicted``: stored verdicts taken, then
    overruled by a violation this run found (not counted in ``reused``); ``unavailable``: why
    the run went without it."""

    path: Path
    reused: int = 0
    replayed: int = 0
    redecided: int = 0
    trusted: bool = False
    unavailable: str = ""
    contradicted: int = 0

    @property
    def unchecked(self) -> int:
        """Reused verdicts taken on the store's word (``holds``, ``unknown``)."""
        return self.reused - self.replayed

    @property
    def notable(self) -> bool:
        """Whether the run's documents should mention the store at all."""
        return bool(self.reused or self.redecided or self.unavailable or self.contradicted)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": str(self.path),
            "reused": self.reused,
            "replayed": self.replayed,
            "unchecked": self.unchecked,
            "trusted": self.unchecked if self.trusted else 0,
            "redecided": self.redecided,
            "contradicted": self.contradicted,
        }
        if self.unavailable:
            out["unavailable"] = self.unavailable
        return out


class StoreSession:
    """One run's view of the store: lookups under the reuse rules, writes, the tallies."""

    def __init__(
        self,
        path: Path,
        keys: tuple[str, str, str, float],
        reuse: Iterable[Status],
        trusted: bool,
    ) -> None:
        self.path = path
        self._network, self._prop, self._backend, self._timeout = keys
        self._reuse = frozenset(reuse)
        self._trusted = trusted
        self._store, self._unavailable = open_store(path)
        self._reused = self._replayed = self._redecided = 0

    def __enter__(self) -> StoreSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def take(
        self, point: str, replay: Callable[[Verdict], Verdict | None]
    ) -> tuple[Verdict, bool] | None:
        """A stored verdict to reuse for ``point`` and whether it was re-checked (a replayed
        witness), or None: decide the point afresh. ``replay(stored)`` returns the verdict
        with the witness as replayed now, or None when it does not replay."""
        if self._store is None:
            return None
        try:
            found = self._store.candidates(
                self._network, self._prop, point, self._backend, self._timeout
            )
        except StoreUnavailable as err:
            self._drop(str(err))
            return None
        for stored in found:
            if stored.status is Status.VIOLATED:
                replayed = replay(stored)
                if replayed is not None:
                    self._reused += 1
                    self._replayed += 1
                    return replayed, True
                log.warning("%s: a stored witness for point %s does not replay", self.path, point)
            elif stored.status in self._reuse:
                self._reused += 1
                return stored, False
        if found:
            self._redecided += 1
        return None

    def put(self, point: str, verdict: Verdict) -> None:
        """Keep a verdict decided in this run (not the ones that say nothing of the query)."""
        if self._store is None or not is_reusable(verdict):
            return
        try:
            self._store.put(self._network, self._prop, point, self._backend, self._timeout, verdict)
        except StoreUnavailable as err:
            self._drop(str(err))

    def _drop(self, why: str) -> None:
        log.warning(
            "store %s: %s; going on without it (verdicts from now on are not kept)", self.path, why
        )
        self.close()
        self._unavailable = why

    def report(self) -> StoreReport:
        return StoreReport(
            self.path,
            self._reused,
            self._replayed,
            self._redecided,
            self._trusted,
            self._unavailable,
        )
