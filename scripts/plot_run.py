#!/usr/bin/env python
"""Plot training runs: python scripts/plot_run.py RUN_DIR [RUN_DIR ...] [--output curves.png] [--labels NAME ...]

An alias of `python -m nmt report RUN_DIR ... --plot PNG [--labels NAME ...]` (nmt/cli/report.py), kept
with its flags: --output/-o (default: curves.png) is report's --plot. One PNG with, for every run
(labelled by its directory name): the training loss (a moving average of the steps) and the dev loss
against steps, dev BLEU against steps and against wall-clock minutes, and the learning rate. This is how
time-to-quality comparisons are read: several runs on one figure. Like report, it also prints the runs'
results table (on standard output; the PNG's path goes to standard error). train.py writes the same
figure for its own run as RUN_DIR/curves.png.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmt.errors import ArgumentParser, UserError, fail  # noqa: E402


def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories written by train.py")
    p.add_argument("--output", "-o", default="curves.png", help="the PNG to write (default: curves.png)")
    p.add_argument("--labels", nargs="+", help="one label per run (default: the directory names)")
    try:
        args = p.parse_args(argv)
    except UserError as error:
        return fail(error)
    from nmt.cli import report

    labels = ["--labels", *args.labels] if args.labels else []
    return report.main(["--plot", args.output, *labels, "--", *args.runs])


if __name__ == "__main__":
    sys.exit(main())
