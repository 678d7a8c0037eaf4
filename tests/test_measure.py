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


HOLDER = """
import sys, time
block = bytearray(int(sys.argv[1]) * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
time.sleep(1.5)
"""
STAGES = """
import subprocess, sys
from pathlib import Path
here = Path(__file__).parent
for name, mib in (("alpha", 300), ("beta", 100)):
    subprocess.run([sys.executable, str(here / f"{name}.py"), str(mib)], check=True)
"""


def test_a_run_of_jobs_gives_each_job_its_own_peak(tmp_path):
    """`make train-all` runs jobs/train_all.py, which runs each stage as jobs/<stage>.py: the result
    names each stage's peak (here two stages holding 300 and 100 MiB one after the other)."""
    measure = load_measure()
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "train_all.py").write_text(STAGES)
    for name in ("alpha", "beta"):
        (jobs / f"{name}.py").write_text(HOLDER)
    result = measure.run("two stages", [sys.executable, str(jobs / "train_all.py")], interval=0.1)
    assert result["exit_code"] == 0
    by_job = {job: held["peak_rss_gb"] * 1024 for job, held in result["by_job"].items()}
    assert set(by_job) == {"alpha", "beta"}  # the driver job is not a stage
    assert 300 <= by_job["alpha"] < 300 + 60  # the block plus an interpreter
    assert 100 <= by_job["beta"] < 100 + 60
    assert by_job["alpha"] <= result["peak_rss_gb"] * 1024 < by_job["alpha"] + 60  # the run's peak is alpha's


def test_job_of_names_the_job_a_command_line_runs():
    measure = load_measure()
    assert measure.job_of(b"/x/.venv/bin/python\0/repo/jobs/embed_text.py\0--set=a=b\0") == "embed_text"
    assert measure.job_of(b"python\0jobs/train_all.py\0") is None  # the driver of the stages
    assert measure.job_of(b"java\0-cp\0/repo/jobs/x.jar\0") is None
    assert measure.job_of(None) is None
