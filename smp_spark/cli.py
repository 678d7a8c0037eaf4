"""Shared command line for the thin jobs in ``jobs/``: ``--conf``, ``--set``, clean failures."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

from smp_spark.config import Config, load_config
from smp_spark.errors import SmpError


def build_parser(name: str, add_args: Callable[[argparse.ArgumentParser], None] | None = None):
    parser = argparse.ArgumentParser(prog=name, description=f"smp-spark job: {name}")
    parser.add_argument("--conf", help="profile: a YAML path or a name in conf/ (default: $SMP_CONF or local)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set data.scale=50000 (repeatable)",
    )
    if add_args:
        add_args(parser)
    return parser


def run_job(
    name: str,
    main: Callable[..., object],
    needs_spark: bool = True,
    add_args: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: list[str] | None = None,
    job_conf: Callable[[Config], dict[str, str]] | None = None,
) -> None:
    """Parse arguments, load config, build the session, run ``main(config, args[, spark])``.

    Expected failures (:class:`SmpError`) print one ``error:`` line and exit non-zero with no
    traceback; anything else is a bug and keeps its traceback. ``job_conf`` gives the Spark
    settings this job's session needs beyond the config's (see :func:`smp_spark.session.get_spark`).
    """
    args = build_parser(name, add_args).parse_args(argv)
    started = time.time()
    try:
        config: Config = load_config(args.conf, args.overrides)
        if needs_spark:
            from smp_spark.session import get_spark

            main(config, args, get_spark(config, job_conf(config) if job_conf else None))
        else:
            main(config, args)
    except SmpError as exc:
        print(f"error: {name}: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    print(f"{name}: done in {time.time() - started:.1f}s")
