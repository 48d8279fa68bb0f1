#!/usr/bin/env python
"""Score translations with sacreBLEU: nmt evaluate, from nmt/cli/evaluate.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmt.cli.evaluate import *  # noqa: E402,F401,F403  (the command's functions, for code that imports this script)
from nmt.cli.evaluate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
