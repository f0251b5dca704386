"""The ``verify`` command line: one click group, one module per subcommand.

:mod:`~robustprop.verify.cli.main` is the group (the console script
``robustprop.verify.cli.main:main``); ``train``, ``export``, ``run``, ``vnnlib``, ``report``
and ``experiment`` each live in the module of that name; :mod:`~robustprop.verify.cli.version`
gives the version, :mod:`~robustprop.verify.cli.param_types` the option types built from
the library's tables, :mod:`~robustprop.verify.cli.options` the options several subcommands
share (as decorators) and :mod:`~robustprop.verify.cli.run_flags` the options of ``run``.
The top layer: nothing in robustprop imports it.

Nothing is re-exported here: importing the group from this package would run
``cli/main.py`` before ``python -m robustprop.verify.cli.main`` does.
"""

__all__: list[str] = []
