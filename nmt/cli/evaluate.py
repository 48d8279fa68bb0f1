#!/usr/bin/env python
"""Score hypothesis files against references with sacrebleu (BLEU, chrF), and compare two systems.

    nmt evaluate --ref REF HYP                 # scores with signatures
    nmt evaluate --ref REF1 --ref REF2 HYP     # several references per sentence
    nmt evaluate --ref REF BASELINE SYSTEM     # both scored + sacrebleu's paired bootstrap test
    nmt evaluate --ref REF HYP --lowercase     # case-insensitive BLEU (sacrebleu -lc)

Files are UTF-8, one sentence per line (trailing whitespace ignored, as by the sacrebleu command line). The
numbers equal those of ``sacrebleu REF -i HYP -m bleu chrf`` and, for two systems,
``SACREBLEU_SEED=SEED sacrebleu REF -i BASELINE SYSTEM -m bleu chrf --paired-bs --paired-bs-n N``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from nmt.errors import ArgumentParser, UserError
from nmt.text import evaluation


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "hypotheses", nargs="+", metavar="HYP", help="hypothesis file(s): one system, or baseline and system"
    )
    parser.add_argument(
        "--ref",
        "-r",
        action="append",
        required=True,
        metavar="REF",
        help="reference file (repeat for several references)",
    )
    parser.add_argument(
        "--metrics",
        "-m",
        nargs="+",
        default=list(evaluation.DEFAULT_METRICS),
        choices=sorted(evaluation.METRICS),
        help="metrics (default: bleu chrf)",
    )
    parser.add_argument("--tokenize", default=None, help="BLEU tokenizer (sacrebleu's names; default 13a)")
    parser.add_argument(
        "--lowercase",
        "-lc",
        action="store_true",
        help="case-insensitive BLEU, as sacrebleu -lc (signature case:lc; chrF stays cased)",
    )
    parser.add_argument(
        "--paired-bs-n", type=int, default=1000, help="bootstrap resamples for the paired test (default 1000)"
    )
    parser.add_argument(
        "--seed", type=int, default=evaluation.DEFAULT_SEED, help="resampling seed (default 12345, sacrebleu's)"
    )
    parser.add_argument("--width", "-w", type=int, default=2, help="decimals shown (default 2)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    if len(args.hypotheses) > 2:
        parser.error(f"expected one or two hypothesis files (a baseline and a system), got {len(args.hypotheses)}")
    if not 0 <= args.width <= 10:
        parser.error(f"--width: expected a number of decimals from 0 to 10, got {args.width}")
    if args.paired_bs_n < 1:
        parser.error(f"--paired-bs-n: expected a positive number of resamples, got {args.paired_bs_n}")
    return args


def read_corpus(hypothesis_paths, reference_paths):
    """(list of systems' lines, reference streams); line counts checked with the files named."""
    systems = [evaluation.read_lines(path) for path in hypothesis_paths]
    references = [evaluation.read_lines(path) for path in reference_paths]
    expected, first = len(systems[0]), hypothesis_paths[0]
    for path, lines in list(zip(hypothesis_paths, systems))[1:] + list(zip(reference_paths, references)):
        if len(lines) != expected:
            raise UserError(
                f"{path} has {len(lines)} lines but {first} has {expected} lines; expected the same number of lines"
            )
    return systems, references


def main(argv=None) -> int:
    try:
        args = parse_args(argv)
        systems, references = read_corpus(args.hypotheses, args.ref)
        scores = [
            evaluation.score(lines, references, args.metrics, bleu_tokenize=args.tokenize, lowercase=args.lowercase)
            for lines in systems
        ]
        comparison = None
        if len(systems) == 2:
            comparison = evaluation.paired_bootstrap(
                systems[0],
                systems[1],
                references,
                args.metrics,
                n_samples=args.paired_bs_n,
                seed=args.seed,
                names=args.hypotheses,
                bleu_tokenize=args.tokenize,
                lowercase=args.lowercase,
            )
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        output = {"systems": {path: s.as_dict(args.width) for path, s in zip(args.hypotheses, scores)}}
        if comparison is not None:
            output["paired_bootstrap"] = asdict(comparison)
        print(json.dumps(output, indent=2, ensure_ascii=False))
        return 0
    for path, system_scores in zip(args.hypotheses, scores):
        if len(systems) > 1:
            print(f"{path}:")
        print(system_scores.format(args.width))
    if comparison is not None:
        print()
        print(comparison.format(args.width))
    return 0


if __name__ == "__main__":
    sys.exit(main())
