"""The installed robustprop version, for ``--version`` and the run documents."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["tool_version"]


def tool_version() -> str:
    """The version of the installed distribution (``0+unknown`` in an uninstalled tree)."""
    try:
        return version("robustprop")
    except PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"
