"""Peak resident memory of `learngene collective --preset fast` and of the explorer app on a cached run.

Each is measured in a fresh child process that reports its own peak RSS. Target: under 2 GiB each.
Usage: python benchmarks/bench_memory.py [--run-dir DIR]   (a fast glyphs run is trained into DIR if missing)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

COLLECTIVE = """
import resource, sys
from core.cli.main import main
main(["collective", "--preset", "fast", "--run-dir", sys.argv[1], "--quiet"])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

APP = """
import resource, sys
import explorer
explorer.build(sys.argv[1])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_mib(code: str, run_dir: Path) -> float:
    """Run `code` in a fresh interpreter and return the peak RSS it reports, in MiB."""
    out = subprocess.run([sys.executable, "-c", code, str(run_dir)], check=True, capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run-dir", type=Path, default=Path(tempfile.gettempdir()) / "learngene-bench-memory" / "fast-glyphs"
    )
    args = parser.parse_args()
    print(
        f"learngene collective --preset fast : peak RSS {peak_mib(COLLECTIVE, args.run_dir):7.0f} MiB (target < 2048)"
    )
    print(f"explorer app on the cached run     : peak RSS {peak_mib(APP, args.run_dir):7.0f} MiB (target < 2048)")


if __name__ == "__main__":
    main()
