"""The resumable store: exact verdicts in an embedded SQLite database.

One row per decided query, keyed by (network sha256, property + parameters + τ, point,
backend, timeout). Each verdict is committed on its own as soon as it arrives, in WAL mode, so
a run killed at any moment (SIGKILL included) loses only the queries in flight, and a rerun
skips everything stored. Only the parent process writes; several runs may share one file
(SQLite serialises writers; a busy timeout waits for the lock).

Reuse rules: a ``holds`` or ``violated`` verdict is a fact about the network and the property,
so it is reused whatever backend or timeout found it; an ``unknown`` is reused only for the same
backend and a timeout no larger than the stored one.
"""

from __future__ import annotations

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

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

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


def property_key(name: str, params: dict[str, Any], tau: float) -> str:
    """A canonical string for a property with its parameters and margin."""
    return json.dumps({"name": name, "params": params, "tau": tau}, sort_keys=True)


def point_key(center: npt.NDArray[np.float64], label: int) -> str:
    """A point by content (float64 bytes of the center, and the label)."""
    digest = hashlib.sha256(np.ascontiguousarray(center, dtype=np.float64).tobytes())
    return f"{digest.hexdigest()[:32]}:{label}"


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
            self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        except sqlite3.DatabaseError as err:
            raise InputError(f"--store {path}: not a usable SQLite store ({err})") from err
        except OSError as err:
            raise InputError(f"--store {path}: cannot open ({err.strerror or err})") from err
        try:
            # Read the version before writing anything: a store of another version is
            # refused untouched (no WAL switch, no new tables).
            self._check_version()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except InputError:
            self._db.close()
            raise
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise InputError(f"--store {path}: not a usable SQLite store ({err})") from err

    def _check_version(self) -> None:
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if has_meta is None:
            return
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is not None and row[0] != str(SCHEMA_VERSION):
            raise InputError(
                f"--store {self.path}: schema version {row[0]}, this robustprop uses "
                f"{SCHEMA_VERSION}; choose another --store or delete the file"
            )

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def lookup(
        self, network: str, prop: str, point: str, backend: str, timeout_s: float
    ) -> Verdict | None:
        """A stored verdict usable for this query (see the module's reuse rules)."""
        row = self._db.execute(
            "SELECT verdict FROM verdicts WHERE network=? AND property=? AND point=? "
            "AND status IN ('holds', 'violated') ORDER BY created LIMIT 1",
            (network, prop, point),
        ).fetchone()
        if row is None:
            row = self._db.execute(
                "SELECT verdict FROM verdicts WHERE network=? AND property=? AND point=? "
                "AND backend=? AND timeout_s>=? AND status='unknown' ORDER BY created LIMIT 1",
                (network, prop, point, backend, timeout_s),
            ).fetchone()
        if row is None:
            return None
        try:
            return Verdict.from_json(json.loads(row[0]))
        except (ValueError, KeyError, TypeError) as err:
            log.warning("%s: ignoring an unreadable stored verdict (%s)", self.path, err)
            return None

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
            raise InputError(f"--store {self.path}: cannot write ({err})") from err

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])


def is_reusable(verdict: Verdict) -> bool:
    """Whether a verdict should be stored for reuse (worker crashes are not)."""
    return not (verdict.status is Status.UNKNOWN and "crashed" in verdict.reason)
