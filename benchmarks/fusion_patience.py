"""What each early-stopping patience would have given the fusion net, replayed from a run's log.

A run with the same gold version, seed and process count repeats its losses epoch for epoch
(``tests/test_fusion.py``), and the learning-rate schedule does not look at the patience, so a
shorter ``fusion.early_stopping_patience`` runs the same epochs and stops earlier. Reading the
``fusion epoch N: ... valid MAE X ... (Ts, ...)`` lines of a ``jobs/train_fusion.py`` (or ``make
train-all``) log, this prints for each patience the epoch it would have stopped after, the best
valid MAE it would have kept, and the epoch seconds it would have taken:

    .venv/bin/python benchmarks/fusion_patience.py LOG [LOG ...] [--patience 3 5 8 11]

A log of a run that stopped early says nothing about a longer patience than its own.
"""

from __future__ import annotations

import argparse
import re

EPOCH = re.compile(r"fusion epoch (\d+): .*?valid MAE ([\d.]+).*?\(([\d.]+)s")


def epochs(text: str) -> list[tuple[int, float, float]]:
    """``(epoch, valid MAE, seconds)`` of every epoch line, in order."""
    return [(int(e), float(mae), float(s)) for e, mae, s in EPOCH.findall(text)]


def replay(rows: list[tuple[int, float, float]], patience: int) -> tuple[int, int, float, float]:
    """The epoch a run would stop after, its best epoch and valid MAE, and the epoch seconds."""
    best, best_epoch, seconds, epoch = float("inf"), 0, 0.0, 0
    for epoch, mae, spent in rows:
        seconds += spent
        if mae < best:
            best, best_epoch = mae, epoch
        if epoch - best_epoch >= patience:
            break
    return epoch, best_epoch, best, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+")
    parser.add_argument("--patience", type=int, nargs="+", default=[3, 4, 5, 6, 8, 11])
    args = parser.parse_args()
    for path in args.logs:
        with open(path, errors="replace") as f:
            rows = epochs(f.read())
        print(f"{path}: {len(rows)} epochs")
        for patience in args.patience:
            stop, best_epoch, best, seconds = replay(rows, patience)
            print(
                f"  patience {patience:2d}: stops after epoch {stop:2d}, "
                f"best valid MAE {best:.4f} (epoch {best_epoch}), {seconds:.0f} epoch seconds"
            )


if __name__ == "__main__":
    main()
