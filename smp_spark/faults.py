"""Named crash points for testing what a killed job leaves behind.

A job calls :func:`crash_point` between the writes whose order matters. With
``SMP_CRASH_AT=<name>`` in the environment the process dies there: by SIGKILL (as a killed
job would: no cleanup runs), or, with ``SMP_CRASH_MODE=raise``, by raising :class:`Crashed`, so a
test can check the same on-disk state inside its own process. Unset, a crash point does nothing.
"""

from __future__ import annotations

import os
import signal


class Crashed(BaseException):
    """A simulated crash (a BaseException: no ``except Exception`` handler swallows it)."""


def crash_point(name: str) -> None:
    if os.environ.get("SMP_CRASH_AT") != name:
        return
    if os.environ.get("SMP_CRASH_MODE") == "raise":
        raise Crashed(name)
    os.kill(os.getpid(), signal.SIGKILL)
