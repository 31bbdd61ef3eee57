"""Errors a user can cause. Each message names the input and says what to do.

The CLI prints these without a traceback and exits with code 2; anything else is a bug. Every package
raises subclasses of ``CrosscamError``; this module imports nothing, so none of them depends on another
for its errors.
"""


class CrosscamError(Exception):
    """Base class of every error caused by user input (a path, a file, a flag, a config key)."""


class ConfigError(CrosscamError):
    """A configuration file or override is malformed or names an unknown key."""
