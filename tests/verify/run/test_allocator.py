"""glibc's thresholds (:func:`tune_allocator`): after it, a freed 32 MiB block stays mapped in
the heap for the next tensor (the process's resident size keeps it); without it glibc unmaps
the block at once. Each case runs in a fresh process (a threshold, once set, stays)."""

from __future__ import annotations

import os
import sys

import pytest

from tests.fresh_python import fresh_python

_CODE = """
import sys
from robustprop.verify.run.allocator import tune_allocator
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
tuned = tune_allocator() if sys.argv[1] == "tuned" else False
block = bytearray(32 << 20)  # zero-filled: every page touched
before = rss()
del block
print(tuned, before - rss())
"""


def _freed_and_unmapped(mode: str) -> tuple[bool, int]:
    tuned, released = fresh_python(_CODE, mode).split()
    return tuned == "True", int(released)


@pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"),
    reason="glibc's mallopt",
)
def test_a_freed_block_stays_mapped_only_when_tuned() -> None:
    tuned, released = _freed_and_unmapped("tuned")
    assert tuned
    assert released < 4 << 20  # kept for reuse
    tuned, released = _freed_and_unmapped("plain")
    assert not tuned
    assert released > 28 << 20  # glibc's default: unmapped on free
