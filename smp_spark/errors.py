"""Errors a user can act on. Jobs print them as one line and exit non-zero, without a traceback."""


class SmpError(Exception):
    """An expected failure: bad input, bad configuration, a missing folder."""

    exit_code = 2


class ConfigError(SmpError):
    """A configuration key is unknown, of the wrong type, or out of range."""


class InputError(SmpError):
    """A whole input file cannot be used; the message names the file and the fix."""


class EvaluationError(SmpError):
    """Predictions cannot be evaluated as they are (e.g. null or NaN predictions)."""


class FeatureError(SmpError):
    """A feature's state cannot be fitted on the rows given (e.g. fewer dimensions than components)."""
