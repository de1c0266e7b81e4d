"""Wall time and peak resident memory of one command, as the kernel accounts them.

The command runs as the child of a small wrapper process rather than of the caller: Linux
carries a forking process's resident size into the child's ru_maxrss at exec, so a child of a
large process (pytest after a full run, the benchmark) would report the parent's size.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

WRAPPER = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {time.perf_counter() - start}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    wall: float  # seconds, from fork to exit
    peak_mb: float


def run_measured(cmd: list[str], stdin: str = "", env: dict[str, str] | None = None, timeout: float = 600) -> Measured:
    with tempfile.TemporaryDirectory(prefix="peak-rss-") as folder:
        report = os.path.join(folder, "report")
        done = subprocess.run(
            [sys.executable, "-c", WRAPPER, report, *cmd],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        with open(report, encoding="utf-8") as handle:
            kb, wall = handle.read().split()
    return Measured(done.returncode, done.stdout, done.stderr, float(wall), int(kb) / 1024)
