"""User-facing errors.

Anything the user can get wrong (a file, a line in it, a config key, a command-line option) raises
`UserError` with a one-line message that names the culprit and says what was received and what was
expected. Command-line entry points catch it and print `error: <message>` without a traceback (`fail`).
Every command parses its options with `ArgumentParser`, so a command-line mistake is a `UserError` too
and every command reports it in the same format, ``error: <message> (see <command> --help)``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO


class UserError(Exception):
    """A mistake in the user's input; its message is one line and is shown as is."""

    def __init__(self, message: str):
        message = " ".join(str(message).split("\n"))
        super().__init__(message)


class ArgumentParser(argparse.ArgumentParser):
    """The argument parser of every command: a command-line mistake raises `UserError` with one line,
    ``<argparse's message> (see <prog> --help)``, where argparse would print a usage block and exit. The
    prog is the name the user ran (``train.py``, ``nmt train``), so the hint is a command that works."""

    def error(self, message):
        raise UserError(f"{message} (see {self.prog} --help)")


def fail(error: UserError, stderr: TextIO | None = None) -> int:
    """Reports a user's mistake as the one line ``error: <message>`` on stderr; returns exit status 2."""
    print(f"error: {error}", file=sys.stderr if stderr is None else stderr, flush=True)
    return 2
