"""What the notebooks in ``notebooks/`` share: their parameters, the session, and showing results.

The notebooks run on Databricks, where ``spark``, ``dbutils`` and ``display`` already exist, and
locally as plain scripts (``python notebooks/01_explore.py``). Each starts with
``nb = start_notebook(globals())``, which reads its parameters from Databricks widgets when
``dbutils`` exists and from environment variables otherwise:

    widget   environment   meaning
    conf     SMP_CONF      the profile: a name in conf/ or a YAML path (default: local)
    set      SMP_SET       --set style overrides, "key=value key=value" (shell quoting; "--set" optional)
    <name>   SMP_<NAME>    a notebook's own parameter, read with :meth:`Notebook.param`

On Databricks results go to ``display()``; locally tables are printed and figures saved as PNG
under ``<paths.reports>/notebooks/``.
"""

from __future__ import annotations

import base64
import os
import shlex
from dataclasses import dataclass
from typing import Any, Callable

from pyspark.sql import DataFrame, SparkSession

from smp_spark.config import Config, load_config
from smp_spark.console import format_table
from smp_spark.errors import ConfigError


@dataclass
class Notebook:
    config: Config
    spark: SparkSession
    dbutils: Any = None  # Databricks' dbutils: widgets are the parameters
    display: Callable | None = None  # Databricks' display(); None locally
    display_html: Callable | None = None  # Databricks' displayHTML()

    def param(self, name: str, default: str) -> str:
        """A notebook parameter: the widget ``name`` on Databricks (created with ``default``), else
        the environment variable ``SMP_<NAME>``, else ``default``."""
        if self.dbutils is not None:
            return _widget(self.dbutils, name, default)
        return os.environ.get(f"SMP_{name.upper()}", default)

    def choices(self, name: str, default: str, allowed: list[str]) -> list[str]:
        """A comma-separated parameter whose every item must be one of ``allowed``."""
        picked = [item.strip() for item in self.param(name, default).split(",") if item.strip()]
        unknown = [item for item in picked if item not in allowed]
        if unknown:
            raise ConfigError(f"notebook parameter '{name}': unknown {unknown} (choose from {', '.join(allowed)})")
        return picked

    def show(self, df: DataFrame, n: int = 20) -> None:
        """A Spark DataFrame: ``display()`` on Databricks, else its first ``n`` rows printed."""
        if self.display is not None:
            self.display(df.limit(n))
        else:
            df.show(n, truncate=False)

    def show_rows(self, header: list[str], rows: list[tuple]) -> None:
        """A small table already on the driver (a few aggregated rows)."""
        if self.display is not None:
            import pandas as pd

            self.display(pd.DataFrame(rows, columns=header))
        else:
            print(format_table(header, [tuple(_cell(v) for v in row) for row in rows]))
            if not rows:
                print("(no rows)")

    def show_records(self, records: list[dict]) -> None:
        """Dicts with the same keys (e.g. metric rows) as a table, one column per key."""
        header = list(records[0]) if records else []
        self.show_rows(header, [tuple(r[k] for k in header) for r in records])

    def show_figure(self, fig, name: str) -> None:
        """A matplotlib figure: ``display()`` on Databricks, else saved as ``<reports>/notebooks/<name>.png``."""
        import matplotlib.pyplot as plt

        if self.display is not None:
            self.display(fig)
        else:
            folder = os.path.join(self.config.path("reports"), "notebooks")
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, f"{name}.png")
            fig.savefig(path, dpi=110)
            print(f"figure: {path}")
        plt.close(fig)

    def show_image(self, path: str) -> None:
        """A PNG written by the library (e.g. a report plot): inline on Databricks, else its path."""
        if self.display_html is not None:
            with open(path, "rb") as f:
                encoded = base64.b64encode(f.read()).decode("ascii")
            self.display_html(f'<img src="data:image/png;base64,{encoded}"/>')
        else:
            print(f"image: {path}")


def _widget(dbutils, name: str, default: str) -> str:
    dbutils.widgets.text(name, default)  # no-op when the widget exists: its current value wins
    return dbutils.widgets.get(name)


def _cell(value: object) -> object:
    return f"{value:.4f}" if isinstance(value, float) else ("–" if value is None else value)


def parse_overrides(text: str) -> list[str]:
    """``'--set a=1 b="x y"'`` -> ``['a=1', 'b=x y']``: the overrides of the ``set`` parameter."""
    return [token for token in shlex.split(text or "") if token != "--set"]


def start_notebook(namespace: dict) -> Notebook:
    """Parameters, config and session of a notebook. ``namespace`` is the notebook's ``globals()``:
    only ``dbutils``, ``display`` and ``displayHTML`` are read from it (they exist on Databricks).

    The session is the active one when there is one (Databricks, a notebook rerun), else a new one
    built from the profile's ``spark`` settings.
    """
    from smp_spark.session import get_spark

    dbutils = namespace.get("dbutils")
    if dbutils is not None:
        profile = _widget(dbutils, "conf", "local")
        overrides = parse_overrides(_widget(dbutils, "set", ""))
    else:
        profile = None  # load_config falls back to $SMP_CONF, then conf/local.yaml
        overrides = parse_overrides(os.environ.get("SMP_SET", ""))
    config = load_config(profile, overrides)
    spark = get_spark(config)
    print(f"config: {config.source}; lake: {config.path('lake')}")
    return Notebook(config, spark, dbutils, namespace.get("display"), namespace.get("displayHTML"))
