"""benchmarks/measure.py: a fork that has not exec'd is its parent's memory, counted once."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

MEASURE = Path(__file__).resolve().parents[1] / "benchmarks" / "measure.py"
FORKER = """
import os, sys, time
block = bytearray(300 * 2**20)  # 300 MiB, every page written
for i in range(0, len(block), 4096):
    block[i] = 1
child = os.fork()
if child == 0:
    time.sleep(30)  # a fork that never execs: its pages are still its parent's
    os._exit(0)
print(child, flush=True)
time.sleep(30)
"""


def load_measure():
    spec = importlib.util.spec_from_file_location("measure", MEASURE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_fork_before_exec_is_counted_once_with_its_parent():
    measure = load_measure()
    parent = subprocess.Popen([sys.executable, "-c", FORKER], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        time.sleep(0.2)
        rss = {pid: Path(f"/proc/{pid}/status").read_text() for pid in (parent.pid, child)}
        resident = {
            pid: int(next(ln for ln in s.splitlines() if ln.startswith("VmRSS:")).split()[1]) for pid, s in rss.items()
        }
        assert resident[child] >= 300 * 1024  # the kernel does show the fork holding the 300 MiB too
        sizes = measure.tree_rss(parent.pid)
        assert set(sizes) == {parent.pid}
        assert 300 * 2**20 <= sum(sizes.values()) < 2 * 300 * 2**20
    finally:
        parent.kill()
        parent.wait()
