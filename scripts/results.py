#!/usr/bin/env python
"""Re-decode the test set of trained runs: test BLEU/chrF greedy and with beam 5, decoding speed and size.

    python scripts/results.py RUN_DIR [RUN_DIR ...] --data ../shared/data/multi30k \
        [--test test2016] [--src de --tgt en] [--beams 1,5] [--json FILE] [--keep docs/results]

What this script alone does (it loads each model with TensorFlow and translates): for every run
directory written by train.py, on the test split of --data (raw text, one sentence per line, e.g.
Multi30k's test2016.de / test2016.en):

- test BLEU and chrF with sacreBLEU's signatures for each beam size of --beams (cased, 13a, detokenized
  output; the run's length penalty, the one it chose on dev included), and BLEU lowercased
  (`nmt evaluate --lowercase`, as `sacrebleu -lc`, for comparison with figures computed on lowercased text);
- decoding speed: test sentences per second with a warm (traced) search, per beam size;
- from the run's files: steps, epochs, wall-clock minutes of training, best dev BLEU, target tokens per
  second (steps x the mean target tokens per batch of an epoch: the tokenized training targets plus EOS
  over the steps of one pass), parameters, peak resident memory of train.py (from logs/train.csv's
  peak_rss_mb, or with --rss-log-dir from a `/usr/bin/time -v` log named RUN_NAME.log there).

Prints one Markdown table and the score lines; --json writes every figure and signature (a list, one
object per run, as before). Decoding speed needs an otherwise idle machine, like any timing.

--keep DIR (docs/results) keeps each run for the summary of docs/RESULTS.md: it writes DIR/RUN_NAME/ with
the run's config.yaml, train.csv and a results.json record: the run's own results.json (for a run older
than it, the same fields from these figures: test = the beam of the run's decode.beam_size, and null for
what nothing measured: dev, stopped, device, precision, versions), with the figures measured here added
under "decoded" (per beam size), "parameters", "peak_rss_mb", "target_tokens_per_s" and "best_dev_bleu".
An existing DIR/RUN_NAME is refused, before anything is decoded. Then add RUN_NAME to DIR/runs.yaml
(date, CPU, note) and run `python -m nmt report --summary`.

The rest moved to `python -m nmt report` (no TensorFlow), which reads what training wrote: the table
of runs from their results.json, the curves (`--plot`, which this script took before and now answers with
a one-line error saying so) and the summary (`python scripts/results.py --summary [--check]` still works:
it runs `python -m nmt report --summary [--check]`).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nmt.errors import ArgumentParser, UserError, fail  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="*", type=Path, metavar="RUN_DIR")
    p.add_argument("--data", type=Path, default=None, help="directory with the raw test files")
    p.add_argument("--summary", action="store_true", help="= python -m nmt report --summary")
    p.add_argument("--check", action="store_true", help="with --summary: = python -m nmt report --summary --check")
    p.add_argument("--test", default="test2016", help="test file stem (default: test2016)")
    p.add_argument("--src", default=None, help="source language suffix (default: the run's corpus.src_lang)")
    p.add_argument("--tgt", default=None, help="target language suffix (default: the run's corpus.tgt_lang)")
    p.add_argument("--beams", default="1,5", help="beam sizes to score (default: 1,5)")
    p.add_argument("--json", type=Path, default=None, help="write every figure and signature here")
    p.add_argument("--keep", type=Path, default=None, metavar="DIR", help="write each run's record into DIR/RUN_NAME/")
    p.add_argument("--plot", type=Path, default=None, help=argparse.SUPPRESS)  # moved: a one-line error
    p.add_argument("--rss-log-dir", type=Path, default=None, help="where RUN_NAME.log holds `time -v` output")
    args = p.parse_args(argv)
    if args.plot is not None:
        runs = " ".join(map(str, args.runs)) or "RUN_DIR ..."
        p.error(f"--plot moved to nmt report: python -m nmt report {runs} --plot {args.plot}")
    if args.summary:
        if args.runs or args.data:
            p.error("--summary takes no RUN_DIR and no --data: it reads docs/results/")
        return args
    if args.check:
        p.error("--check goes with --summary")
    if not args.runs or args.data is None:
        p.error("expected RUN_DIR ... and --data DIR (or --summary)")
    try:
        args.beams = [int(b) for b in args.beams.split(",")]
    except ValueError:
        p.error(f"--beams: expected comma-separated integers, received {args.beams!r}")
    if any(b < 1 for b in args.beams):
        p.error(f"--beams: beam sizes must be >= 1, received {args.beams}")
    return args


def _epochs(run: Path) -> list[dict]:
    with open(run / "logs" / "train.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def peak_rss_mb(run: Path, rows: list[dict], log_dir: Path | None) -> float | None:
    values = [float(r["peak_rss_mb"]) for r in rows if r.get("peak_rss_mb")]
    if values:
        return max(values)
    if log_dir is not None and (log_dir / f"{run.name}.log").is_file():
        text = (log_dir / f"{run.name}.log").read_text(encoding="utf-8", errors="replace")
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        if match:
            return int(match.group(1)) / 1024
    return None


def training_figures(run: Path, translator, cfg) -> dict:
    """Steps, epochs, minutes, best dev BLEU and target tokens/s from the run's logs."""
    from nmt.text.corpus import Corpus

    rows = _epochs(run)
    last = rows[-1]
    steps, minutes = int(last["step"]), float(last["minutes"])
    per_epoch = int(rows[0]["step"]) if len(rows) > 1 else None
    corpus = Corpus(cfg.corpus)
    targets = list(corpus.train.targets())
    tokens = sum(len(ids) + 1 for ids in translator.tokenizers.tgt.encode_batch(targets))  # + EOS
    batches = per_epoch or steps
    return {
        "steps": steps,
        "epochs": round(steps / per_epoch, 2) if per_epoch else None,
        "minutes": minutes,
        "best_dev_bleu": max(float(r["val_bleu"]) for r in rows if r.get("val_bleu")),
        "target_tokens_per_s": steps * tokens / batches / (60 * minutes),
    }


def decode_figures(translator, sources: list[str], references: list[str], beam: int) -> dict:
    """Scores and sentences/s of one beam size (the search traced on a first slice, then timed)."""
    from nmt.text import evaluation

    settings = translator.settings(beam_size=beam, nbest=1)
    translator.translate(sources[:128], settings)  # trace the search for the batch shapes
    start = time.perf_counter()
    hypotheses = [t.text for t in translator.translate(sources, settings)]
    seconds = time.perf_counter() - start
    scores = evaluation.score(hypotheses, references)
    lower = evaluation.score(hypotheses, references, metrics=("bleu",), lowercase=True)
    return {
        "bleu": scores.bleu,
        "chrf": scores.chrf,
        "bleu_line": scores.format(),
        "bleu_lowercase": lower.bleu,
        "bleu_lowercase_signature": lower.signatures["bleu"],
        "sentences_per_s": len(sources) / seconds,
    }


def measure(run: Path, args) -> dict:
    from nmt import config
    from nmt.decode.translator import load_run
    from nmt.text import evaluation, textfile

    cfg = config.load(run / "config.yaml")
    src = args.src or cfg.corpus.src_lang
    tgt = args.tgt or cfg.corpus.tgt_lang
    sources = list(textfile.read_lines(args.data / f"{args.test}.{src}", convention=textfile.CRLF))
    references = evaluation.read_lines(args.data / f"{args.test}.{tgt}")
    if len(sources) != len(references):
        raise UserError(f"{args.data}: {len(sources)} {src} test lines but {len(references)} {tgt} lines")
    translator = load_run(run)
    result = {
        "run": str(run),
        "direction": f"{src}-{tgt}",
        "parameters": translator.model.count_params(),
        "length_penalty": translator.decode.length_penalty,  # the config's, or the one training chose on dev
        "peak_rss_mb": peak_rss_mb(run, _epochs(run), args.rss_log_dir),
        **training_figures(run, translator, cfg),
    }
    for beam in args.beams:
        print(f"{run.name}: decoding {len(sources)} sentences with beam {beam} ...", file=sys.stderr, flush=True)
        result[f"beam{beam}"] = decode_figures(translator, sources, references, beam)
    return result


def table(results: list[dict], beams: list[int]) -> str:
    head = ["run", "dir", "steps", "epochs", "min", "best dev"]
    for b in beams:
        head += [f"BLEU b{b}", f"chrF b{b}", f"lc BLEU b{b}", f"sent/s b{b}"]
    head += ["tgt tok/s", "peak RSS MB", "params"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [Path(r["run"]).name, r["direction"], f"{r['steps']:,}", str(r["epochs"]), f"{r['minutes']:.1f}"]
        cells.append(f"{r['best_dev_bleu']:.2f}")
        for b in beams:
            d = r[f"beam{b}"]
            cells += [f"{d['bleu']:.2f}", f"{d['chrf']:.2f}", f"{d['bleu_lowercase']:.2f}"]
            cells.append(f"{d['sentences_per_s']:.1f}")
        rss = "" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:,.0f}"
        cells += [f"{r['target_tokens_per_s']:,.0f}", rss, f"{r['parameters']:,}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------- the records of docs/results/ (--keep)

#: The fields of a record that the figures measured here add to the run's results.json.
MEASURED = ("parameters", "peak_rss_mb", "target_tokens_per_s", "best_dev_bleu")
#: The fields of a score in results.json (nmt.train.trainer.score_record).
SCORE_FIELDS = ("bleu", "chrf", "bleu_signature", "chrf_signature")


def decoded_scores(figures: dict) -> dict:
    """One beam's figures as a record keeps them: results.json's score fields (the signatures read from
    sacreBLEU's score lines), the lowercased BLEU, the sentences per second and the score lines."""
    signatures = {}
    for line in figures["bleu_line"].splitlines():
        name = "bleu" if line.startswith("BLEU") else "chrf" if line.startswith("chrF") else None
        if name:
            signatures[name] = line.rsplit("  ", 1)[-1]
    return {
        "bleu": figures["bleu"],
        "chrf": figures["chrf"],
        "bleu_signature": signatures.get("bleu"),
        "chrf_signature": signatures.get("chrf"),
        "bleu_lowercase": figures["bleu_lowercase"],
        "bleu_lowercase_signature": figures["bleu_lowercase_signature"],
        "sentences_per_s": figures["sentences_per_s"],
        "lines": figures["bleu_line"],
    }


def record(figures: dict, config_path: Path, epochs_path: Path, trained: dict | None) -> dict:
    """The results.json record of a run re-decoded here (figures: one object of --json): `trained` (the
    run's own results.json) or, for a run older than results.json, its fields from the figures and the
    run's config.yaml and train.csv, with null for what was not measured; then the figures measured here."""
    import yaml

    decoded = {k[len("beam") :]: decoded_scores(v) for k, v in figures.items() if re.fullmatch(r"beam\d+", k)}
    if trained is None:
        config_bytes = config_path.read_bytes()
        decode = yaml.safe_load(config_bytes).get("decode") or {}
        beam = decode.get("beam_size")
        test = decoded.get(str(beam))
        length_penalty = figures.get("length_penalty")  # the one decoding used; not recorded before 2026-12-06
        if length_penalty is None and not decode.get("tune_length_penalty"):
            length_penalty = decode.get("length_penalty")  # nothing tuned: the config's
        with open(epochs_path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        per_epoch = int(rows[0]["step"]) if len(rows) > 1 else None
        trained = {
            "dev": None,
            "test": None if test is None else {k: test[k] for k in SCORE_FIELDS},
            "length_penalty": length_penalty if test is not None else None,
            "beam_size": beam if test is not None else None,
            "steps": figures["steps"],
            "epochs": figures["steps"] // per_epoch if per_epoch else None,
            "minutes": figures["minutes"],
            "stopped": None,
            "device": None,
            "precision": None,
            "versions": None,
            "config_sha256": hashlib.sha256(config_bytes).hexdigest(),
        }
    return {**trained, "decoded": decoded, **{key: figures.get(key) for key in MEASURED}}


def keep_dir(keep: Path, run: Path) -> Path:
    """DIR/RUN_NAME for --keep, refused (one line) when it exists: a kept record is replaced by hand."""
    target = keep / run.name
    if target.exists():
        raise UserError(f"--keep {keep}: {target} exists; remove it first to replace that record")
    return target


def keep(figures: dict, run: Path, target: Path) -> Path:
    """Writes target/ (config.yaml, train.csv, results.json: the record) from a run directory."""
    from nmt import rundir
    from nmt.cli.records import read_results
    from nmt.files import atomic_write_text

    target.mkdir(parents=True)
    shutil.copyfile(run / rundir.CONFIG_FILE, target / rundir.CONFIG_FILE)
    shutil.copyfile(run / rundir.LOGS_DIR / rundir.EPOCHS_LOG, target / rundir.EPOCHS_LOG)
    kept = record(figures, target / rundir.CONFIG_FILE, target / rundir.EPOCHS_LOG, read_results(run / "results.json"))
    atomic_write_text(target / rundir.RESULTS_FILE, json.dumps(kept, indent=1) + "\n", what="--keep")
    return target


def main(argv=None) -> int:
    try:
        args = parse_args(argv)
    except UserError as error:
        return fail(error)
    if args.summary:
        from nmt.cli import report

        return report.main(["--summary"] + (["--check"] if args.check else []))
    try:
        for run in args.runs:
            if not (run / "config.yaml").is_file() or not (run / "logs" / "train.csv").is_file():
                raise UserError(f"{run}: not a finished run directory (config.yaml, logs/train.csv)")
        targets = [keep_dir(args.keep, run) for run in args.runs] if args.keep else []
        if len(set(targets)) < len(targets):
            raise UserError(f"--keep {args.keep}: two runs of the same name")
        if args.keep:  # a damaged results.json is said now, not after the decoding
            from nmt.cli.records import read_results

            for run in args.runs:
                read_results(run / "results.json")
        from nmt.cli.quiet import import_tensorflow

        import_tensorflow(verbose=False)
        results = [measure(run, args) for run in args.runs]
        print(table(results, args.beams))
        for r in results:
            for b in args.beams:
                print(f"\n{Path(r['run']).name}, beam {b}:\n{r[f'beam{b}']['bleu_line']}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        for figures, run, target in zip(results, args.runs, targets):
            print(f"kept {keep(figures, run, target)}; add {run.name} to {args.keep / 'runs.yaml'}", file=sys.stderr)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
