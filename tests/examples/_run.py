"""Run an example as a real subprocess, the way a person would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_module(
    module: str,
    *args: str,
    stdin: str | bytes = "",
    timeout: float = 60.0,
    cwd: Path | None = None,
    exit_code: int = 0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module args`` with ``stdin`` piped in; fail the test unless it exits with
    ``exit_code`` within ``timeout`` seconds and without a traceback."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        input=data,
        capture_output=True,
        timeout=timeout,
        cwd=cwd or ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        check=False,
    )
    text = subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )
    assert text.returncode == exit_code, (
        f"exit {text.returncode}\nstdout:\n{text.stdout[-5000:]}\nstderr:\n{text.stderr[-5000:]}"
    )
    assert "Traceback" not in text.stdout + text.stderr, text.stdout[-5000:] + text.stderr[-5000:]
    return text
