#!/usr/bin/env python
"""Trained systems side by side: test BLEU, chrF and speed of checkpoints, averages and ensembles.

    python bench/bench_systems.py SYSTEM [SYSTEM ...] [--beam-size K] [--repeats N] [--sentences N]

    SYSTEM = RUN_DIR[+RUN_DIR ...][@CHECKPOINT]
        runs/a                  the run's model.keras (what translate.py uses by default)
        runs/a@average          the mean of its kept checkpoints (translate.py --checkpoint average)
        runs/a@best, @last, @STEP
        runs/a+runs/b           an ensemble (translate.py --model runs/a --model runs/b)

Each system is decoded as translate.py decodes it (nmt.decode.translator.load_run) on the first run's
dev and test splits (its config.yaml's corpus). The length penalty is chosen on dev, never on test:
the system's best dev BLEU over the first run's decode.tune_length_penalty values (beam --beam-size),
as training chooses it for model.keras; without that list the run's own. Then test is decoded with
it: BLEU and chrF (sacreBLEU, as train.py scores), and sentences per second, the best of --repeats
timed passes after the dev sweep warmed the search up. Speed is comparable only between systems of
one invocation on an otherwise idle machine. One Markdown table on standard output.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nmt.errors import ArgumentParser, UserError  # noqa: E402


def parse_system(text: str) -> tuple[list[Path], str | None]:
    """'a+b@average' -> ([a, b], 'average'); checked before TensorFlow loads."""
    from nmt.checkpoint import CheckpointChoice
    from nmt.rundir import check_run_dir, check_same_tokenizer

    runs, _, checkpoint = text.partition("@")
    dirs = [check_run_dir(run, what=f"system {text}:") for run in runs.split("+") if run]
    if not dirs:
        raise UserError(f"system {text!r}: expected RUN_DIR[+RUN_DIR ...][@CHECKPOINT]")
    check_same_tokenizer(dirs, what=f"system {text}:")
    checkpoint = checkpoint or None
    if checkpoint is not None:
        for run in dirs:
            CheckpointChoice(run, checkpoint, what=f"system {text}: checkpoint").resolve()
    return dirs, checkpoint


def measure(text: str, dirs: list[Path], checkpoint: str | None, args) -> dict:
    from nmt import config as config_module
    from nmt.decode import tuning
    from nmt.decode.translator import load_run
    from nmt.text import evaluation
    from nmt.text.corpus import Corpus

    cfg = config_module.load(dirs[0] / "config.yaml")
    corpus = Corpus(cfg.corpus)
    if corpus.dev is None or corpus.test is None:
        raise UserError(f"system {text}: its corpus ({dirs[0] / 'config.yaml'}) has no dev or no test split")
    dev, test = list(corpus.dev.pairs()), list(corpus.test.pairs())
    if args.sentences:
        dev, test = dev[: args.sentences], test[: args.sentences]
    translator = load_run(dirs[0], ensemble=dirs[1:], checkpoint=checkpoint)
    beam = args.beam_size or translator.decode.beam_size
    translator.decode = dataclasses.replace(translator.decode, beam_size=beam)
    penalties = cfg.decode.tune_length_penalty or (translator.decode.length_penalty,)
    chosen, sweep = tuning.sweep(translator, dev, penalties, log=lambda line: print(f"  {text}: {line}", flush=True))
    settings = translator.settings(beam_size=beam, length_penalty=chosen)
    sources, references = [s for s, _ in test], [t for _, t in test]
    times, hypotheses = [], None
    for _ in range(args.repeats):
        start = time.perf_counter()
        hypotheses = [t.text for t in translator.translate(sources, settings)]
        times.append(time.perf_counter() - start)
    scores = evaluation.score(hypotheses, references)
    return {
        "system": text,
        "length_penalty": chosen,
        "dev_bleu": sweep[chosen].bleu,
        "test_bleu": scores.bleu,
        "test_chrf": scores.chrf,
        "speed": len(sources) / min(times),
        "beam": beam,
        "test_sentences": len(sources),
    }


def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("systems", nargs="+", metavar="SYSTEM", help="RUN_DIR[+RUN_DIR ...][@CHECKPOINT]")
    p.add_argument("--beam-size", type=int, metavar="K", help="beam size (default: the first run's decode.beam_size)")
    p.add_argument("--repeats", type=int, default=2, metavar="N", help="timed passes over test (best is reported)")
    p.add_argument("--sentences", type=int, metavar="N", help="only the first N dev and test pairs")
    try:
        args = p.parse_args(argv)
        for name, value in (
            ("--beam-size", args.beam_size),
            ("--repeats", args.repeats),
            ("--sentences", args.sentences),
        ):
            if value is not None and value < 1:
                raise UserError(f"{name}: received {value}, expected a positive integer")
        systems = [(text, *parse_system(text)) for text in args.systems]
        from nmt.cli.quiet import import_tensorflow

        import_tensorflow(verbose=False)
        rows = [measure(text, dirs, checkpoint, args) for text, dirs, checkpoint in systems]
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    first = rows[0]["speed"]
    print(
        "\n| system | beam | length penalty (dev) | dev BLEU | test BLEU | test chrF | sentences/s | speed vs first |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| `{r['system']}` | {r['beam']} | {r['length_penalty']:g} | {r['dev_bleu']:.2f} | {r['test_bleu']:.2f} | "
            f"{r['test_chrf']:.2f} | {r['speed']:.1f} | {r['speed'] / first:.2f}x |"
        )
    print(f"\n{rows[0]['test_sentences']} test sentences; sacreBLEU as train.py scores (cased, 13a, detokenized).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
