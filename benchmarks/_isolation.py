"""Running one variant in a fresh process, for figures an earlier run would distort (memory).

The parent starts ``python -m benchmarks._child SPEC`` (SPEC is JSON: target, loop, n, kwargs,
timeout); the child runs the variant and prints one line, ``BENCHMARK-RESULT {...}``, holding
``{"values": {...}}``, ``{"unavailable": reason}`` or ``{"failed": reason}``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CHILD_MARKER = "BENCHMARK-RESULT "
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
_in_child = False


def run_isolated(
    target: str, loop: str, n: int, kwargs: Mapping[str, Any], timeout: float
) -> dict[str, Any]:
    """Run ``target`` in a fresh interpreter; its answer (see the module docstring)."""
    spec = {"target": target, "loop": loop, "n": n, "kwargs": dict(kwargs), "timeout": timeout}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        path for path in (str(_PACKAGE_ROOT), env.get("PYTHONPATH", "")) if path
    )
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks._child", json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=_PACKAGE_ROOT,
        timeout=timeout + 60,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(CHILD_MARKER)]
    if not lines:
        return {"failed": f"subprocess exited with {completed.returncode} and no result"}
    answer: dict[str, Any] = json.loads(lines[-1][len(CHILD_MARKER) :])
    return answer


def enter_child_mode() -> None:
    """Mark this process as a benchmark subprocess (see :func:`finish_early`)."""
    global _in_child
    _in_child = True


def print_child_result(answer: Mapping[str, object]) -> None:
    """Hand a subprocess's outcome to the parent (one marked JSON line on stdout)."""
    print(CHILD_MARKER + json.dumps(answer), flush=True)


def finish_early(values: dict[str, float]) -> dict[str, float]:
    """In a subprocess, report ``values`` and exit now, skipping teardown; else return them.

    Tearing down a million idle actors takes longer than creating them and measures nothing.
    """
    if _in_child:
        print_child_result({"values": values})
        sys.stderr.flush()
        os._exit(0)
    return values
