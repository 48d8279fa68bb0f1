#!/usr/bin/env python
"""Translate with a trained run directory: nmt translate, from nmt/cli/translate.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[0]))

from nmt.cli.translate import *  # noqa: E402,F401,F403  (the command's functions, for code that imports this script)
from nmt.cli.translate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
