"""Run a command and report its wall time and the peak memory of its whole process tree.

``/usr/bin/time -v`` only sees the Python driver, not the JVM it starts, so this samples the
resident memory of every descendant process from /proc twice a second.

    python benchmarks/measure.py --label "ingest 680K" -- .venv/bin/python jobs/ingest.py
Appends a JSON line to benchmarks/results.jsonl (label, command, seconds, peak_rss_gb, date, machine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("results.jsonl")


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def tree_rss_bytes(root: int) -> int:
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
        stack += _children(pid)
    return total


def machine() -> str:
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {mem_gb:.0f} GiB, {platform.processor() or platform.machine()}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--label", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    started = time.time()
    proc = subprocess.Popen(command)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_bytes(proc.pid))
        time.sleep(0.5)
    seconds = time.time() - started
    result = {
        "label": args.label,
        "command": " ".join(command),
        "exit_code": proc.returncode,
        "seconds": round(seconds, 1),
        "peak_rss_gb": round(peak / 2**30, 2),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
    }
    with open(RESULTS, "a") as f:
        f.write(json.dumps(result) + "\n")
    print(json.dumps(result))
    raise SystemExit(proc.returncode)


if __name__ == "__main__":
    main()
