"""The example CI gate keeps the verdict store out of the pull request's reach.

The workflow used to keep ``--store robustness/verdicts.sqlite`` inside the checked-out
workspace, so a pull request could commit a forged store next to its model. The store now
lives in the runner's temporary folder, the cache steps use that same path, and the gate
never trusts it (no ``--trust-store``).
"""

from __future__ import annotations

import re
from pathlib import Path

WORKFLOW = Path(__file__).resolve().parents[1] / "examples" / "ci" / "robustness-gate.yml"


def test_the_store_is_outside_the_workspace_and_not_trusted() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())  # no comments
    stores = re.findall(r"--store\s+(\S+)", code)
    assert stores == ['"$RUNNER_TEMP/robustprop/verdicts.sqlite"']
    cached = re.findall(r"path:\s*(.+verdicts\.sqlite)", code)
    assert cached and all(p == "${{ runner.temp }}/robustprop/verdicts.sqlite" for p in cached)
    assert "--trust-store" not in code
    assert "--min-satisfaction" in code and "--max-time" in code
