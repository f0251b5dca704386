"""Exceptions shared by every package. Each carries the offending value and an exit code.

The CLI maps ``exit_code`` to the process exit status (DESIGN.md §7): 2 for bad input
(usage, files, parameters), 3 for internal or solver faults.
"""

from __future__ import annotations


class RobustpropError(Exception):
    """Base class; ``str(err)`` is a one-line message naming the culprit."""

    exit_code: int = 3


class InputError(RobustpropError, ValueError):
    """Bad user input: a file, parameter, op or value we cannot accept (exit code 2)."""

    exit_code = 2


class InternalError(RobustpropError):
    """A bug or a solver fault (exit code 3)."""

    exit_code = 3
