"""Errors a user can cause and fix; the CLI prints them as one line, never a traceback."""


class CrackError(Exception):
    """An error with a message fit for one line on stderr: what went wrong, where, and the fix."""


class UsageError(CrackError):
    """The command line asks for something impossible; the CLI exits with status 2."""
