"""python -m nmt COMMAND [ARGS ...]: the toolkit's commands (python -m nmt --help lists them)."""

from __future__ import annotations

import importlib
import sys

from nmt.cli import COMMANDS

USAGE = (
    "usage: python -m nmt {"
    + ",".join(COMMANDS)
    + "} [ARGS ...]\n\ncommands:\n"
    + "".join(f"  {name:<10} {text}\n" for name, (_, text) in COMMANDS.items())
    + "\n'python -m nmt COMMAND --help' shows a command's options."
)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(
            f"error: unknown command {name!r}; expected one of {', '.join(COMMANDS)} (see python -m nmt --help)",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    sys.argv[0] = f"nmt-{name}"
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
