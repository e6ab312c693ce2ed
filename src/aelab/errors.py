"""The two ways a run can fail that the user must hear about, and their exit codes."""

from __future__ import annotations


class AelabError(Exception):
    """Base class: carries the exit code the CLI uses and a one-line message."""

    exit_code = 2


class UsageError(AelabError, ValueError):
    """Bad usage or bad input (a file, a shape, a name, a config): exit 2.

    Also a `ValueError`, what Python raises for a bad argument, so code that catches ValueError from
    `build()` keeps working."""

    exit_code = 2


class ModelError(AelabError):
    """The user's model is wrong (e.g. the shape doctor found a problem): exit 1."""

    exit_code = 1


class Interrupted(AelabError):
    """Ctrl-C: the message says what was kept and how to continue (exit 130, the shell's code for SIGINT)."""

    exit_code = 130


EXIT_OK = 0
EXIT_MODEL = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


class RegistryError(Exception):
    """A registry refused an entry at import (a duplicate, a malformed or unknown name): a bug in aelab or
    in an extension, never the user's input, so not an AelabError (the CLI reports it as internal, exit 3)."""
