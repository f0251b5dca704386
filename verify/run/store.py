"""The resumable store: exact verdicts in an embedded SQLite database, an *untrusted cache*.

One row per decided query, keyed by (network sha256, property + parameters + τ, point,
backend, timeout). Each verdict is committed on its own as soon as it arrives, in WAL mode, so
a run killed at any moment (SIGKILL included) loses only the queries in flight, and a rerun
skips everything stored. Only the parent process writes; several runs may share one file
(SQLite serialises writers; a busy timeout waits for the lock).

Anyone who can write the file can write any row (the keys are computed by public functions
from public inputs), so a stored verdict is a claim, not evidence: :meth:`Store.candidates`
returns what is stored and the runner decides what to reuse (a stored ``violated`` is replayed
before it counts; ``holds`` and ``unknown`` are reused only where no gate rests on them, unless
the caller trusts the store; :mod:`robustprop.verify.run.reuse`). A ``holds`` or ``violated``
is a fact about the network and the property whatever backend or timeout found it; an
``unknown`` is offered only for the same backend and a timeout no larger than the stored one.
(The runner's backend key carries the engine's revision,
:func:`~robustprop.verify.engine.revision.engine_revision`, so an unknown stored by an older
engine is decided again. A store of an engine before the last soundness fix loses its
``holds`` rows when it is opened: :data:`SOUND_EPOCH`.)

A store that cannot be used *now* — locked by another process past the busy timeout, or in a
folder this user cannot write (an unwritable ``$HOME`` or cache directory) — raises
:class:`StoreUnavailable`, and :func:`open_store` turns that into one warning and a run
without the store. A file that is not this kind of store (garbage, another schema version,
another application's SQLite tables) is an :class:`InputError` and is left untouched.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import InputError
from robustprop.verify.engine.verdict import Status, Verdict

__all__ = [
    "BUSY_TIMEOUT_S",
    "SCHEMA_VERSION",
    "SOUND_EPOCH",
    "Store",
    "StoreUnavailable",
    "is_reusable",
    "open_store",
    "point_key",
    "property_key",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

#: Raised with each fix of a soundness bug of the engine. A store last opened by an engine of
#: an earlier epoch may hold ``holds`` rows that the bug made: on opening, those rows are
#: dropped (their queries are decided again) and the store takes this epoch; its ``violated``
#: rows stay (each is replayed before it counts), and so do its unknowns (keyed by the engine
#: revision already). Epoch 2: a resumed ReLU-splitting search could lose the sub-domains of
#: its last batch and prove only the rest (introduced by ce2ff8e, fixed by 31a6bf0).
SOUND_EPOCH = 2

#: Seconds a store locked by another process is waited for before the run goes on without it.
BUSY_TIMEOUT_S = 30.0

_TABLES = frozenset({"meta", "verdicts"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS verdicts (
    network TEXT NOT NULL,
    property TEXT NOT NULL,
    point TEXT NOT NULL,
    backend TEXT NOT NULL,
    timeout_s REAL NOT NULL,
    status TEXT NOT NULL,
    verdict TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (network, property, point, backend, timeout_s)
);
"""

# Reasons of verdicts that say nothing about the query itself: never stored.
_NOT_REUSABLE = ("crashed", "interrupted", "run time limit")


class StoreUnavailable(RuntimeError):
    """The store cannot be used now (busy, or not writable here); the run can go on without it."""


def property_key(name: str, params: dict[str, Any], tau: float) -> str:
    """A canonical string for a property with its parameters and margin."""
    return json.dumps({"name": name, "params": params, "tau": tau}, sort_keys=True)


def point_key(center: npt.NDArray[np.float64], label: int) -> str:
    """A point by content (float64 bytes of the center, and the label)."""
    digest = hashlib.sha256(np.ascontiguousarray(center, dtype=np.float64).tobytes())
    return f"{digest.hexdigest()[:32]}:{label}"


def _busy(err: sqlite3.Error) -> bool:
    text = str(err).lower()
    return "locked" in text or "busy" in text


def _unwritable(err: sqlite3.Error) -> bool:
    text = str(err).lower()
    return "readonly" in text or "read-only" in text or "unable to open" in text


class Store:
    """Verdicts of exact queries, persisted; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_dir():
            raise InputError(f"--store {path}: is a directory, expected a file")
        folder = next((p for p in path.parents if p.exists()), None)
        if folder is not None and not folder.is_dir():
            raise InputError(f"--store {path}: {folder} is a file, not a folder")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except PermissionError as err:
            raise StoreUnavailable(f"cannot create it ({err.strerror or err})") from err
        except OSError as err:
            if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise StoreUnavailable(f"cannot create it ({err.strerror or err})") from err
            raise InputError(f"--store {path}: cannot open ({err.strerror or err})") from err
        except sqlite3.OperationalError as err:
            raise StoreUnavailable(f"cannot open it ({err})") from err
        except sqlite3.DatabaseError as err:
            raise InputError(f"--store {path}: not a usable SQLite store ({err})") from err
        try:
            # Read what the file holds before writing anything: a store of another version,
            # or another application's database, is refused untouched (no WAL switch, no
            # new tables).
            self._check_contents()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self._drop_unsound()
        except InputError:
            self._db.close()
            raise
        except sqlite3.OperationalError as err:
            self._db.close()
            if _busy(err):
                raise StoreUnavailable(f"locked by another process ({err})") from err
            if _unwritable(err):
                raise StoreUnavailable(f"not writable ({err})") from err
            raise InputError(f"--store {path}: not a usable SQLite store ({err})") from err
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise InputError(f"--store {path}: not a usable SQLite store ({err})") from err

    def _check_contents(self) -> None:
        tables = {
            str(row[0])
            for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is not None and row[0] != str(SCHEMA_VERSION):
                raise InputError(
                    f"--store {self.path}: schema version {row[0]}, this robustprop uses "
                    f"{SCHEMA_VERSION}; choose another --store or delete the file"
                )
        foreign = sorted(tables - _TABLES)
        if foreign or (tables and "meta" not in tables):
            shown = ", ".join(foreign or sorted(tables))
            raise InputError(
                f"--store {self.path}: an SQLite database of another application (tables: "
                f"{shown}), not a robustprop verdict store; choose another --store"
            )

    def _drop_unsound(self) -> None:
        """Drop the ``holds`` rows of an engine before :data:`SOUND_EPOCH` (none when the
        store is new or already of this epoch), then mark the store with it."""
        row = self._db.execute("SELECT value FROM meta WHERE key='sound_epoch'").fetchone()
        try:
            epoch = int(row[0]) if row is not None else 1
        except ValueError:
            epoch = 1  # unreadable: as old as can be
        if epoch >= SOUND_EPOCH:
            return
        dropped = self._db.execute("DELETE FROM verdicts WHERE status='holds'").rowcount
        self._db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('sound_epoch', ?)", (str(SOUND_EPOCH),)
        )
        if dropped:
            log.warning(
                "store %s: %d 'holds' verdicts were reached by an engine with a soundness bug "
                "since fixed (epoch %d < %d); they are dropped and will be decided again",
                self.path, dropped, epoch, SOUND_EPOCH,
            )  # fmt: skip

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def candidates(
        self, network: str, prop: str, point: str, backend: str, timeout_s: float
    ) -> list[Verdict]:
        """The stored verdicts for this query, most checkable first: ``violated`` (a witness
        to replay), then ``holds``, then an ``unknown`` of the same backend and a timeout no
        smaller than ``timeout_s``. Rows that do not parse are skipped with a warning."""
        try:
            rows = self._db.execute(
                "SELECT verdict FROM verdicts WHERE network=? AND property=? AND point=? AND "
                "(status IN ('holds', 'violated') OR (status='unknown' AND backend=? AND "
                "timeout_s>=?)) ORDER BY CASE status WHEN 'violated' THEN 0 WHEN 'holds' THEN 1 "
                "ELSE 2 END, created",
                (network, prop, point, backend, timeout_s),
            ).fetchall()
        except sqlite3.OperationalError as err:
            if _busy(err):
                raise StoreUnavailable(f"locked by another process ({err})") from err
            raise InputError(f"--store {self.path}: cannot read ({err})") from err
        out: list[Verdict] = []
        for (text,) in rows:
            try:
                out.append(Verdict.from_json(json.loads(text)))
            except (ValueError, KeyError, TypeError) as err:
                log.warning("%s: ignoring an unreadable stored verdict (%s)", self.path, err)
        return out

    def lookup(
        self, network: str, prop: str, point: str, backend: str, timeout_s: float
    ) -> Verdict | None:
        """The first of :meth:`candidates` (unchecked: see the module doc), or None."""
        found = self.candidates(network, prop, point, backend, timeout_s)
        return found[0] if found else None

    def put(
        self,
        network: str,
        prop: str,
        point: str,
        backend: str,
        timeout_s: float,
        verdict: Verdict,
    ) -> None:
        """Store one verdict, committed at once."""
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    network,
                    prop,
                    point,
                    backend,
                    timeout_s,
                    verdict.status.value,
                    json.dumps(verdict.to_json()),
                    time.time(),
                ),
            )
        except sqlite3.OperationalError as err:
            if _busy(err):
                raise StoreUnavailable(f"locked by another process ({err})") from err
            raise InputError(f"--store {self.path}: cannot write ({err})") from err

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])


def open_store(path: Path) -> tuple[Store | None, str]:
    """The store at ``path``, or ``(None, why)`` after one warning when it cannot be used now
    (:class:`StoreUnavailable`); an unusable *file* is an InputError."""
    try:
        return Store(path), ""
    except StoreUnavailable as err:
        why = str(err)
        log.warning(
            "store %s: %s; running without it (its verdicts are not reused or kept)", path, why
        )
        return None, why


def is_reusable(verdict: Verdict) -> bool:
    """Whether a verdict should be stored for reuse (worker crashes, interruptions and the
    run's own time limit say nothing about the query, so those are not)."""
    return not (
        verdict.status is Status.UNKNOWN and any(r in verdict.reason for r in _NOT_REUSABLE)
    )
