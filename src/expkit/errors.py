"""Errors that expkit reports to users.

Every error a user can cause (bad parameter, bad file, missing data) is an
:class:`ExpkitError`. The command line prints its message on one line and exits
with status 2; notebooks show it as the tile's first output. Anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations


class ExpkitError(Exception):
    """A problem with the user's input or data, explained in one line.

    The message names the file, parameter or value at fault and how to fix it.
    """

    exit_code = 2


class ConfigError(ExpkitError):
    """An invalid parameters file or parameter value."""


class NoDataError(ExpkitError):
    """The requested date or window has no data (shown as an explicit "no data" state)."""
