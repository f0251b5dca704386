"""``python -m robustprop``: the ``verify`` command line."""

from robustprop.verify.cli.main import main

main()
