#!/usr/bin/env python
"""Score given translations with a trained model (forced decoding): one line per pair.

    python -m nmt score --model runs/multi30k --source test.en --target test.hyp.de [--output scores.tsv]
    cat pairs.de | python -m nmt score --model runs/multi30k --source test.en --target -

Each output line is ``log_prob <TAB> per_token <TAB> length`` for the pair on the same line of --source and
--target: log P(target, EOS | source) as the search scores a finished hypothesis (no length penalty; the
score translate.py prints with --length-penalty 0), that log-probability divided by the length, and the
length (the target's subword tokens plus the end-of-sentence token). An empty target scores the
end-of-sentence token alone. Used to filter a corpus or rerank n-best lists (`nmt.decode.scoring`).
--model given more than once scores with an ensemble (the log of the mean of the models' per-step
probabilities, as translate.py decodes one); --checkpoint scores with a checkpoint's weights (best, last,
average or a step, `nmt.checkpoint`) instead of model.keras.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TextIO

from nmt.errors import ArgumentParser, UserError


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        required=True,
        action="append",
        metavar="RUN_DIR",
        help="a run directory written by train.py; repeat it to score with an ensemble (one vocabulary)",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="WHICH",
        help="score with a checkpoint's weights: best, last, average or a step number (default: model.keras)",
    )
    parser.add_argument("--source", required=True, metavar="FILE", help="source sentences, one per line (- : stdin)")
    parser.add_argument("--target", required=True, metavar="FILE", help="their translations, line by line (- : stdin)")
    parser.add_argument("--output", metavar="FILE", help="write the scores here (default: standard output)")
    parser.add_argument(
        "--batch-size", type=int, metavar="N", help="pairs per batch (default: config decode.batch_size)"
    )
    parser.add_argument("--verbose", action="store_true", help="keep TensorFlow's own messages on standard error")
    return parser


def read(path: str, stdin: TextIO, what: str) -> list[str]:
    """The lines of path (standard input for -), read by the one line reader (errors name file and line)."""
    from nmt.text import textfile

    if path == "-":
        from nmt.cli.translate import binary_stream

        return list(textfile.LineReader(binary_stream(stdin), "<stdin>", textfile.CRLF))
    return list(textfile.read_lines(path, textfile.CRLF, what=what))


def check(args) -> tuple[list[Path], object]:
    """The options and files, checked before TensorFlow loads -> (run directories, batching)."""
    from nmt import config as config_module
    from nmt.config.fields import FieldError
    from nmt.decode.settings import Batching
    from nmt.rundir import CONFIG_FILE

    if args.source == "-" and args.target == "-":
        raise UserError("--source and --target: only one of them can be standard input (-)")
    from nmt.checkpoint import check_models

    run_dirs, _ = check_models(args.model, args.checkpoint)
    decode = config_module.load(run_dirs[0] / CONFIG_FILE).decode
    try:
        batching = Batching.from_decode(decode, batch_size=args.batch_size)
    except FieldError as error:
        raise error.renamed({"batch_size": "--batch-size"}) from None
    for option, path in (("--source", args.source), ("--target", args.target)):
        if path != "-" and (not os.path.exists(path) or os.path.isdir(path)):  # a pipe is opened once, later
            from nmt.text import textfile

            textfile.open_binary(path, what=option)  # the one-line error: no such file, a directory
    if args.output:
        from nmt.cli.translate import check_output_path

        check_output_path(Path(args.output))
    return run_dirs, batching


def main(argv=None, stdin: TextIO | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    try:
        args = build_parser().parse_args(argv)
        run_dirs, batching = check(args)
        sources = read(args.source, stdin, "--source")
        targets = read(args.target, stdin, "--target")
        if len(sources) != len(targets):
            raise UserError(
                f"--source {args.source} has {len(sources)} lines but --target {args.target} has {len(targets)}; "
                "expected one target line per source line"
            )
        from nmt.cli.quiet import import_tensorflow

        import_tensorflow(verbose=args.verbose)
        from nmt.cli.translate import Output
        from nmt.decode.translator import load_run

        translator = load_run(run_dirs[0], ensemble=run_dirs[1:], checkpoint=args.checkpoint)
        scores = translator.score(sources, targets, batching)
        output = Output(args.output, stdout)
        try:
            for score in scores:
                output.write(f"{score.log_prob:.6f}\t{score.per_token:.6f}\t{score.length}\n")
            output.commit()
        except BaseException:
            output.abort()
            raise
        return 0
    except UserError as error:
        print(f"error: {error}", file=stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("", file=stderr, flush=True)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
