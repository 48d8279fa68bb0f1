#!/usr/bin/env python
"""Regenerate the configuration reference in README.md from the config declarations (nmt.config) and
the comments of configs/toy.yaml: python scripts/config_reference.py [--check]

The table sits between the README's `<!-- config-reference:start -->` and `<!-- config-reference:end -->`
lines. --check exits with status 1 (and changes nothing) when the README's table is out of date.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nmt.cli.quiet import import_tensorflow  # noqa: E402

import_tensorflow()  # nmt.config imports the model code; keep TensorFlow's start-up lines off the terminal
from nmt.config import reference_markdown  # noqa: E402

START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def updated(readme: str) -> str:
    head, rest = readme.split(START + "\n", 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{reference_markdown()}{END}{tail}"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = ROOT / "README.md"
    text = path.read_text(encoding="utf-8")
    new = updated(text)
    if "--check" in argv:
        if new != text:
            print(
                "error: README.md: the configuration reference is out of date; run python scripts/config_reference.py",
                file=sys.stderr,
            )
            return 1
        return 0
    path.write_text(new, encoding="utf-8")
    print(f"wrote the configuration reference into {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
