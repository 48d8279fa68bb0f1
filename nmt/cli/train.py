#!/usr/bin/env python
"""Train a GRU encoder-decoder: nmt-train (python train.py) --config FILE [--run-dir DIR] [--set k=v ...] [--resume]

Command line only; the work is in nmt.train.prepare (before TensorFlow is imported) and
nmt.train.trainer. User mistakes end in one line on stderr ("error: ...", exit status 2), not a
traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys


def parse_args(argv=None):
    from nmt.errors import OneLineArgumentParser

    p = OneLineArgumentParser(description="Train an nmt model (see configs/ for commented configs).")
    p.add_argument("--config", required=True, help="YAML config file, e.g. configs/toy.yaml")
    p.add_argument("--run-dir", help="where checkpoints, logs and the export go (default: runs/<config name>)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set train.epochs=3 (repeatable)",
    )
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own start-up and runtime messages")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="remove what an earlier run wrote into --run-dir and start over (refused for a directory "
        "that is not a run directory; files of your own in it are kept)",
    )
    args = p.parse_args(argv)
    if args.resume and args.overwrite:
        p.error("--resume and --overwrite exclude each other")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from nmt.errors import UserError

    try:
        from nmt import config
        from nmt.train.prepare import prepare

        # Mistakes in the config, the run directory, the corpus or the tokenizer are reported before
        # TensorFlow (seconds to load) is imported, and before anything is changed on disk.
        cfg = config.load(args.config, args.overrides)
        run_dir = args.run_dir or os.path.join("runs", os.path.splitext(os.path.basename(args.config))[0])
        prepared = prepare(cfg, run_dir, resume=args.resume, overwrite=args.overwrite)
        from nmt.cli.quiet import import_tensorflow

        import_tensorflow(verbose=args.verbose)
        from nmt.train import trainer

        # Keras draws its progress bar on standard output; ours goes to standard error, with the other
        # messages, so that standard output stays free for what a command produces.
        with contextlib.redirect_stdout(sys.stderr):
            result = trainer.train(prepared)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. a full disk under a log or a checkpoint: say which file, no traceback
        where = exc.filename or args.run_dir or "the run directory"
        print(f"error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint is kept; continue with --resume", file=sys.stderr)
        return 130
    print(f"done: {result.steps:,} steps ({result.stopped}); run directory {result.run_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
