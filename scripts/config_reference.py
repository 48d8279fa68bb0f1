#!/usr/bin/env python
"""Regenerate the configuration reference in docs/CONFIG.md from the config declarations (nmt.config) and
the comments of configs/toy.yaml: python scripts/config_reference.py [--check]

The table sits between the `<!-- config-reference:start -->` and `<!-- config-reference:end -->` lines of
docs/CONFIG.md. --check exits with status 1 (and changes nothing) when that table is out of date.
Needs no TensorFlow: nmt.config is plain Python.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nmt.config import reference_markdown  # noqa: E402

CONFIG_MD = ROOT / "docs" / "CONFIG.md"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def updated(text: str) -> str:
    head, rest = text.split(START + "\n", 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{reference_markdown()}{END}{tail}"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = CONFIG_MD.read_text(encoding="utf-8")
    new = updated(text)
    if "--check" in argv:
        if new != text:
            fix = "run python scripts/config_reference.py"
            print(f"error: {CONFIG_MD}: the configuration reference is out of date; {fix}", file=sys.stderr)
            return 1
        return 0
    CONFIG_MD.write_text(new, encoding="utf-8")
    print(f"wrote the configuration reference into {CONFIG_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
