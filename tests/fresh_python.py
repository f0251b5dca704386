"""Run Python code in a fresh interpreter (for what one process can set only once: imports,
the garbage collector, the C allocator) and return what it printed."""

from __future__ import annotations

import subprocess
import sys


def fresh_python(code: str, *args: str) -> str:
    """The stdout of ``python -c code args…`` (an error if it fails)."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return done.stdout
