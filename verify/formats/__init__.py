"""File formats: VNN-LIB read and written, and the one atomic writer for user-named outputs.

- :mod:`~robustprop.verify.formats.vnnlib` — parse a VNN-LIB 1.0 property into a negation;
- :mod:`~robustprop.verify.formats.vnnlib_write` — write a property's negation as VNN-LIB;
- :mod:`~robustprop.verify.formats.output_file` — write a user-named output (atomically for
  files, in place for devices and FIFOs, ``-`` for standard output), errors as
  :class:`~robustprop.properties.errors.InputError` naming the option;
- :mod:`~robustprop.verify.formats.compressed` — read a file that may be gzip-compressed,
  with a cap on its inflated size;
- :mod:`~robustprop.verify.formats.vnncomp` — VNN-COMP's instances.csv, expected answers and
  results files;
- :mod:`~robustprop.verify.formats.text` — names from files made safe for a terminal
  (:func:`printable`) and for Markdown.

Above :mod:`robustprop.verify.engine`, below :mod:`robustprop.verify.run`.
"""

from robustprop.verify.formats.output_file import write_output
from robustprop.verify.formats.text import markdown_text, printable
from robustprop.verify.formats.vnnlib import VnnlibProperty, parse_vnnlib, read_vnnlib
from robustprop.verify.formats.vnnlib_write import vnnlib_text, write_vnnlib

__all__ = [
    "VnnlibProperty",
    "markdown_text",
    "parse_vnnlib",
    "printable",
    "read_vnnlib",
    "vnnlib_text",
    "write_output",
    "write_vnnlib",
]
