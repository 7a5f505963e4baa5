"""Entry point of a benchmark subprocess: runs one variant, prints one marked JSON line.

``python -m benchmarks._child SPEC`` (see :mod:`benchmarks._isolation`).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from benchmarks._harness import Unavailable, invoke, quiet_logging, reason
from benchmarks._isolation import enter_child_mode, print_child_result


def main(argv: list[str]) -> None:
    spec = json.loads(argv[1])
    enter_child_mode()
    quiet_logging()
    try:
        values = invoke(spec["target"], spec["loop"], spec["n"], spec["kwargs"], spec["timeout"])
    except (ImportError, Unavailable) as exc:
        answer: dict[str, object] = {"unavailable": reason(exc)}
    except Exception as exc:
        traceback.print_exc()
        answer = {"failed": f"{type(exc).__name__}: {reason(exc)}"}
    else:
        answer = {"values": values}
    print_child_result(answer)
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: nothing after the measurement matters


if __name__ == "__main__":
    main(sys.argv)
