"""``verify``'s start-up: a subcommand's modules load on demand, with the cyclic garbage
collector paused while they import and their objects exempt from its later collections
(torch's import alone triggers several full collections; about 0.3 s of a small instance's
wall time). The collector must be on again afterwards: a run's own garbage is collected."""

from __future__ import annotations

from tests.fresh_python import fresh_python


def test_a_subcommand_loads_with_the_collector_paused_and_leaves_it_on() -> None:
    code = (
        "import gc, sys, click; from robustprop.verify.cli.main import cli; "
        "assert 'torch' not in sys.modules; frozen = gc.get_freeze_count(); "
        "cli.get_command(click.Context(cli), 'vnnlib'); "
        "print('torch' in sys.modules, gc.isenabled(), gc.get_freeze_count() > frozen)"
    )
    assert fresh_python(code).split() == ["True", "True", "True"]
