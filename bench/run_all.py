"""Run every benchmark in turn and print their markdown tables (the source of benchmarks.md).

.venv/bin/python bench/run_all.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = ("overhead.py", "diff_speed.py", "checks_concurrency.py")


def main() -> int:
    here = Path(__file__).resolve().parent
    status = 0
    for script in BENCHMARKS:
        # One interpreter per benchmark, so none inherits another's imports or caches.
        status |= subprocess.run([sys.executable, str(here / script)], check=False).returncode
        print(flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
