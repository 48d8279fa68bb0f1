"""User-facing errors.

Anything the user can get wrong (a file, a line in it, a config key, a command-line option) raises
`UserError` with a one-line message that names the culprit and says what was received and what was
expected. Command-line entry points catch it and print `error: <message>` without a traceback.
"""

from __future__ import annotations

import argparse
import sys


class UserError(Exception):
    """A mistake in the user's input; its message is one line and is shown as is."""

    def __init__(self, message: str):
        message = " ".join(str(message).split("\n"))
        super().__init__(message)


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse with command-line mistakes reported as one line, ``error: ... (see --help)``, exit status 2
    (argparse's own report is a usage block and then the message)."""

    def error(self, message):
        print(f"error: {self.prog}: {message} (see --help)", file=sys.stderr, flush=True)
        sys.exit(2)
