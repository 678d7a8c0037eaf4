"""Run a command and report its wall time and the peak memory of its whole process tree.

``/usr/bin/time -v`` only sees the Python driver, not the JVM it starts, so this samples the
resident memory of every descendant process from /proc twice a second, and what each kind of
process held at the peak (``at_peak_gb``: the JVM, Spark's Python workers, the driver's Python).
Where the command runs jobs (``make train-all``: each stage a ``jobs/<name>.py`` process with its
JVM and workers under it), ``by_job`` gives each job's own peak and what held it, so a whole run
names the stage that set its peak.

    python benchmarks/measure.py --label "ingest 680K" -- .venv/bin/python jobs/ingest.py
Appends a JSON line to benchmarks/results.jsonl (label, command, seconds, peak_rss_gb, at_peak_gb, date, machine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("results.jsonl")


def _children(pid: int) -> list[int]:
    """The child processes of ``pid``: none once it has exited (its /proc folder goes at any moment)."""
    kids = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return kids
    for task in tasks:
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def _kind(pid: int) -> str:
    """What a process is, for the breakdown: the JVM, Spark's Python workers, or another program."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "gone"
    name = Path(argv[0].decode(errors="replace")).name or "?"
    if any(b"pyspark.daemon" in a or b"pyspark.worker" in a for a in argv):
        return "python (Spark workers)"
    return name


JOB = re.compile(rb"(?:^|/)jobs/(\w+)\.py$")
DRIVERS = {"train_all"}  # jobs that only run other jobs: their children are the stages


def job_of(cmdline: bytes | None) -> str | None:
    """The ``jobs/<name>.py`` a command line runs (``embed_text`` ...), None for another program."""
    for arg in (cmdline or b"").split(b"\0"):
        found = JOB.search(arg)
        if found and found.group(1).decode() not in DRIVERS:
            return found.group(1).decode()
    return None


FORK_SHARE = 0.9  # a child with its parent's command line and within this share of its size: a fork


def _cmdline(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


def tree_rss(root: int, jobs: dict[int, str] | None = None) -> dict[int, int]:
    """Resident bytes of each process in the tree under ``root`` (``root`` included). Given a dict
    ``jobs``, fills it with the job (:func:`job_of`) each counted process runs under: its own or
    its nearest ancestor's.

    A child that runs its parent's command line (read just before and just after its size) and
    holds within :data:`FORK_SHARE` of its parent's resident bytes, either way, is a fork that has
    not exec'd (the JVM's ``jspawnhelper`` starts by a vfork that shares the JVM's memory; Python's
    ``subprocess`` forks) or has not yet grown: its pages are its parent's, counted once, with the
    parent. Its size is rarely exactly its parent's: a fork lacks the file pages it has not touched,
    a vfork child's shared memory is read a moment after its parent's (a JVM's fork counted a
    second 4.9-5.0 GiB as "gone" before this rule). A process that has exited holds nothing."""
    sizes, stack = {}, [(root, None, None, None)]
    while stack:
        pid, parent_rss, parent_cmdline, job = stack.pop()
        before, rss = _cmdline(pid), None
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
        except OSError:
            continue
        after = _cmdline(pid)
        if before is None or after is None:
            continue  # exited while it was read
        fork = (
            rss is not None
            and parent_rss is not None
            and parent_cmdline in (before, after)
            and FORK_SHARE * parent_rss <= rss <= parent_rss / FORK_SHARE
        )
        job = job_of(after) or job
        if rss is not None and not fork:
            sizes[pid] = rss
            if jobs is not None and job:
                jobs[pid] = job
        stack += [(child, rss, after, job) for child in _children(pid)]
    return sizes


def breakdown(sizes: dict[int, int]) -> dict[str, float]:
    """GiB per kind of process ("java", "python (Spark workers)" ...), with the count of each."""
    kinds: dict[str, list[int]] = {}
    for pid, rss in sizes.items():
        kinds.setdefault(_kind(pid), []).append(rss)
    return {f"{k} x{len(v)}": round(sum(v) / 2**30, 2) for k, v in sorted(kinds.items(), key=lambda kv: -sum(kv[1]))}


def machine() -> str:
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {mem_gb:.0f} GiB, {platform.processor() or platform.machine()}"


def run(label: str, command: list[str], interval: float = 0.5) -> dict:
    """Run ``command``, sampling its tree every ``interval`` seconds; the result line (not written)."""
    started = time.time()
    proc = subprocess.Popen(command)
    peak, at_peak, job_peaks = 0, {}, {}
    while proc.poll() is None:
        jobs: dict[int, str] = {}
        sizes = tree_rss(proc.pid, jobs)
        if sum(sizes.values()) > peak:
            peak, at_peak = sum(sizes.values()), breakdown(sizes)
        for job in set(jobs.values()):
            mine = {pid: rss for pid, rss in sizes.items() if jobs.get(pid) == job}
            if sum(mine.values()) > job_peaks.get(job, (0, {}))[0]:
                job_peaks[job] = (sum(mine.values()), breakdown(mine))
        time.sleep(interval)
    result = {
        "label": label,
        "command": " ".join(command),
        "exit_code": proc.returncode,
        "seconds": round(time.time() - started, 1),
        "peak_rss_gb": round(peak / 2**30, 2),
        "at_peak_gb": at_peak,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
    }
    if len(job_peaks) > 1:  # one job alone: its peak is the whole command's
        result["by_job"] = {
            job: {"peak_rss_gb": round(size / 2**30, 2), "at_peak_gb": held} for job, (size, held) in job_peaks.items()
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--label", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    result = run(args.label, command)
    with open(RESULTS, "a") as f:
        f.write(json.dumps(result) + "\n")
    print(json.dumps(result))
    raise SystemExit(result["exit_code"])


if __name__ == "__main__":
    main()
