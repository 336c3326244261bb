"""What every bench module shares: where things are, the bench's error, and the import path of the project's
Python harness (Tests/e2e/support: broker, kflow, topic reader, metrics parser, ipfix-gen runner), which the
end-to-end tests use too. Import this module before `support`."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "Tests" / "e2e") not in sys.path:
    sys.path.insert(0, str(REPO / "Tests" / "e2e"))

from support.procs import DEPS, HarnessError  # noqa: E402


class BenchError(HarnessError):
    """A step could not be run; the message says which and why."""


__all__ = ["REPO", "DEPS", "BenchError", "HarnessError"]
