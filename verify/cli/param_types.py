"""Click parameter types whose values come from the library's own tables.

Each type is built from a table (``REGIMES``, ``PROPERTIES``, ``DATASET_NAMES``, …), never a
copied list, so ``--help`` and shell completion offer exactly what the library accepts:

- :class:`TableChoice`: one name from a table; an unknown name is the library's one-line
  :class:`~robustprop.properties.errors.InputError` (``unknown regime 'x'; valid: …``, exit 2).
- :class:`NameOrFile`: a name from a table or a file (``--data fashion-mnist`` or
  ``--data my.npz``); completion offers both, the library checks the value.
- :class:`CommaSeparated`: names from a table joined by commas (``--data a,b``);
  completion completes the name after the last comma, the command checks the names.

:class:`OldNames` is the option class of a renamed option: its old spellings still work but
``--help`` shows only the new ones.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

import click
from click.shell_completion import CompletionItem

from robustprop.properties.errors import InputError

__all__ = ["CommaSeparated", "NameOrFile", "OldNames", "TableChoice"]


class TableChoice(click.Choice[str]):
    """One of ``choices``; anything else raises ``InputError("unknown <noun> …")``."""

    def __init__(self, noun: str, choices: Iterable[str]) -> None:
        super().__init__(tuple(choices))
        self.noun = noun

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            valid = ", ".join(self.choices)
            flag = f"{param.opts[0]}: " if param is not None and param.opts else ""
            raise InputError(f"{flag}unknown {self.noun} {value!r}; valid: {valid}") from None


class NameOrFile(click.ParamType[str]):
    """A name from ``names`` or a path to a ``suffix`` file, passed on as given."""

    name = "name-or-file"

    def __init__(self, names: Iterable[str], suffix: str) -> None:
        self.names = tuple(names)
        self.suffix = suffix

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "[" + "|".join((*self.names, f"FILE{self.suffix}")) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        return str(value)

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        named = [CompletionItem(n) for n in self.names if n.startswith(incomplete)]
        return [*named, CompletionItem(incomplete, type="file")]


class CommaSeparated(click.ParamType[str]):
    """Comma-separated names from ``names`` (the command checks them), passed on as given."""

    name = "names"

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "[" + "|".join(self.names) + "][,...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        return str(value)

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        head, comma, last = incomplete.rpartition(",")
        given = set(head.split(",")) if comma else set()
        prefix = head + comma
        return [
            CompletionItem(prefix + n) for n in self.names if n.startswith(last) and n not in given
        ]


class OldNames(click.Option):
    """A renamed option: ``old=("--dataset",)`` are accepted as before, left out of ``--help``."""

    def __init__(self, *args: Any, old: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.old = tuple(old)
        unknown = [name for name in self.old if name not in self.opts]
        if unknown:
            raise ValueError(f"old names {unknown} are not names of {self.opts}")

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown = copy.copy(self)
        shown.opts = [name for name in self.opts if name not in self.old]
        return click.Option.get_help_record(shown, ctx)
