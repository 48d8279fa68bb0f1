#!/usr/bin/env python
"""Plot training runs: python scripts/plot_run.py RUN_DIR [RUN_DIR ...] [--output curves.png]

One PNG with, for every run (labelled by its directory name): the training loss (a moving average of
the steps) and the dev loss against steps, dev BLEU against steps and against wall-clock minutes, and
the learning rate. This is how time-to-quality comparisons are read: several runs on one figure.
train.py writes the same figure for its own run as RUN_DIR/curves.png.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmt.errors import OneLineArgumentParser, UserError  # noqa: E402


def main(argv=None) -> int:
    p = OneLineArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories written by train.py")
    p.add_argument("--output", "-o", default="curves.png", help="the PNG to write (default: curves.png)")
    p.add_argument("--labels", nargs="+", help="one label per run (default: the directory names)")
    args = p.parse_args(argv)
    if args.labels is not None and len(args.labels) != len(args.runs):
        p.error(f"--labels: {len(args.labels)} labels for {len(args.runs)} runs")
    try:
        for run in args.runs:
            if not Path(run).is_dir():
                raise UserError(f"{run}: no such run directory")
        from nmt.train.plotting import plot_runs

        print(plot_runs(args.runs, args.output, args.labels))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
