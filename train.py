#!/usr/bin/env python
"""Train a GRU encoder-decoder: nmt train, from nmt/cli/train.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[0]))

from nmt.cli.train import *  # noqa: E402,F401,F403  (the command's functions, for code that imports this script)
from nmt.cli.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
