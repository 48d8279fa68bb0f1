"""nmt COMMAND [ARGS ...] (python -m nmt COMMAND ...): the toolkit's one command; nmt --help lists the verbs."""

from __future__ import annotations

import importlib
import sys

from nmt.cli import COMMANDS

USAGE = (
    "usage: nmt {"
    + ",".join(COMMANDS)
    + "} [ARGS ...]\n\ncommands:\n"
    + "".join(f"  {name:<10} {text}\n" for name, (_, text) in COMMANDS.items())
    + "\n'nmt COMMAND --help' shows a command's options; from a checkout, 'python -m nmt' is 'nmt'."
)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(
            f"error: unknown command {name!r}; expected one of {', '.join(COMMANDS)} (see nmt --help)",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    sys.argv[0] = f"nmt {name}"  # each command's prog: "usage: nmt train ...", "(see nmt train --help)"
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
