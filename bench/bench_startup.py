"""Start-up cost: wall time of `fakescope --help` against `python -c pass`, same interpreter.

Target: `fakescope --help` <= 0.2 s. Prints the median of N runs of each.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def median_time(cmd: list[str], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    base = median_time([sys.executable, "-c", "pass"], n)
    cli = median_time([sys.executable, "-m", "fakescope_cli", "--help"], n)
    print(f"python -c pass      {base * 1000:7.1f} ms")
    print(f"fakescope --help    {cli * 1000:7.1f} ms  ({cli / base:.1f}x bare interpreter; target <= 200 ms)")


if __name__ == "__main__":
    main()
