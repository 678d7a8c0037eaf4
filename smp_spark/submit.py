"""Run a job through ``spark-submit`` with the profile's master, jars and ``spark.*`` settings.

    scripts/submit.sh jobs/ingest.py --conf conf/cluster.yaml [--set key=value ...] [job options]

The job gets every argument after its script unchanged, so it loads the same config as this
command. spark-submit gets ``--master`` from ``spark.master``, ``--packages`` from
``spark.packages`` (Maven coordinates: the jars reach the executors through Spark), a ``--conf``
per ``spark.conf`` entry, and the package as a zip through ``--py-files``. The driver and the
executors' Python workers run this interpreter (``PYSPARK_PYTHON``, unless already set), so on a
multi-machine cluster the same environment must exist at the same path on every worker.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import sys
from pathlib import Path
from urllib.parse import urlparse

import pyspark

from smp_spark.cli import build_parser
from smp_spark.config import PROJECT_ROOT, Config, load_config
from smp_spark.errors import SmpError
from smp_spark.session import resolve_setting

PACKAGE_DIR = PROJECT_ROOT / "smp_spark"
ZIP_DIR = PROJECT_ROOT / ".cache" / "submit"
USAGE = "usage: scripts/submit.sh JOB.py [--conf PROFILE] [--set key=value ...] [job options]"


def package_zip(out_dir: Path = ZIP_DIR) -> Path:
    """The ``smp_spark`` sources as a zip for ``--py-files``. Named by a hash of its content, so a
    rebuilt zip never replaces the one a running job is serving to its executors."""
    import zipfile

    sources = sorted(p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for source in sources:
        digest.update(str(source.relative_to(PROJECT_ROOT)).encode())
        digest.update(source.read_bytes())
    target = out_dir / f"smp_spark-{digest.hexdigest()[:12]}.zip"
    if not target.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for source in sources:
                archive.write(source, source.relative_to(PROJECT_ROOT))
        partial.replace(target)
    return target


def submit_command(config: Config, script: str, job_args: list[str], py_files: Path) -> list[str]:
    """The spark-submit command line that runs ``script`` with ``job_args`` under ``config.spark``."""
    command = [
        str(Path(pyspark.__file__).parent / "bin" / "spark-submit"),
        *("--master", config.spark.master, "--name", config.spark.app_name),
    ]
    if config.spark.packages:
        command += ["--packages", ",".join(config.spark.packages)]
    command += ["--py-files", str(py_files)]
    for key, value in config.spark.conf.items():
        command += ["--conf", f"{key}={resolve_setting(key, value)}"]
    return [*command, script, *job_args]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        sys.exit(USAGE)
    script, job_args = argv[0], argv[1:]
    options, _ = build_parser("submit").parse_known_args(job_args)  # the job's own options pass through
    try:
        if not os.path.isfile(script):
            raise SmpError(f"no job script '{script}' (the jobs are in {PROJECT_ROOT / 'jobs'})")
        config = load_config(options.conf, options.overrides)
    except SmpError as exc:
        print(f"error: submit: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    env = dict(os.environ)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    if urlparse(config.spark.master).hostname in ("127.0.0.1", "localhost"):
        env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # a cluster on loopback: the driver listens there too
    command = submit_command(config, script, job_args, package_zip())
    print("+ " + shlex.join(command), flush=True)
    os.execve(command[0], command, env)


if __name__ == "__main__":
    main()
