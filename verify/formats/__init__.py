"""File formats: VNN-LIB read and written, and the one atomic writer for user-named outputs.

- :mod:`~robustprop.verify.formats.vnnlib` — parse a VNN-LIB 1.0 property into a negation;
- :mod:`~robustprop.verify.formats.vnnlib_write` — write a property's negation as VNN-LIB;
- :mod:`~robustprop.verify.formats.output_file` — write a file atomically, errors as
  :class:`~robustprop.properties.errors.InputError` naming the option.

Above :mod:`robustprop.verify.engine`, below :mod:`robustprop.verify.run`.
"""

from robustprop.verify.formats.output_file import write_output
from robustprop.verify.formats.vnnlib import VnnlibProperty, parse_vnnlib, read_vnnlib
from robustprop.verify.formats.vnnlib_write import vnnlib_text, write_vnnlib

__all__ = [
    "VnnlibProperty",
    "parse_vnnlib",
    "read_vnnlib",
    "vnnlib_text",
    "write_output",
    "write_vnnlib",
]
