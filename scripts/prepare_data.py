#!/usr/bin/env python
"""Prepare a parallel corpus: nmt prepare, from nmt/cli/prepare.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmt.cli.prepare import *  # noqa: E402,F401,F403  (the command's functions, for code that imports this script)
from nmt.cli.prepare import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
