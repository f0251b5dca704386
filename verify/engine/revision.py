"""Which revision of the exact engine decided a verdict, for the store's ``unknown`` rows.

A ``holds`` or ``violated`` is a fact about the network and the property, whoever found it;
an ``unknown`` only says that *this* engine gave up within its time. After the engine changes
(a new search, a stronger bound), a stored ``unknown`` should be decided again rather than
reused. :func:`engine_revision` is a digest of the engine's own source files, computed once
per process: any change to them is a new revision.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path

__all__ = ["engine_revision"]

log = logging.getLogger(__name__)


@functools.cache
def engine_revision() -> str:
    """12 hex digits of the sha256 over this package's ``.py`` files (relative path and
    content, in path order); ``"unknown"`` when they cannot be read (then every revision
    looks alike, as before revisions existed)."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    try:
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    except OSError as err:
        log.warning("cannot read the engine's sources for its revision (%s)", err)
        return "unknown"
    return digest.hexdigest()[:12]
