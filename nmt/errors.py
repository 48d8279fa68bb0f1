"""User-facing errors.

Anything the user can get wrong (a file, a line in it, a config key, a command-line option) raises
`UserError` with a one-line message that names the culprit and says what was received and what was
expected. Command-line entry points catch it and print `error: <message>` without a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input; its message is one line and is shown as is."""

    def __init__(self, message: str):
        message = " ".join(str(message).split("\n"))
        super().__init__(message)
