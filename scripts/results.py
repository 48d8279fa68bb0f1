#!/usr/bin/env python
"""The results table of trained runs: test BLEU/chrF (greedy and beam 5), speed and size; and the
summary at the top of docs/RESULTS.md.

    python scripts/results.py RUN_DIR [RUN_DIR ...] --data ../shared/data/multi30k \
        [--test test2016] [--src de --tgt en] [--json results.json] [--plot curves.png]
    python scripts/results.py --summary [--check]

For every run directory written by train.py, on the test split of --data (raw text, one sentence per
line, e.g. Multi30k's test2016.de / test2016.en):

- test BLEU and chrF with sacreBLEU's signatures, greedy and beam 5 (cased, 13a, detokenized output),
  and BLEU lowercased (`nmt-evaluate --lowercase`, as `sacrebleu -lc`, for comparison with figures
  computed on lowercased text);
- decoding speed: test sentences per second with a warm (traced) search, greedy and beam 5;
- training: steps, epochs, wall-clock minutes of training, best dev BLEU, and target tokens per
  second (steps x the mean target tokens per batch of an epoch: the tokenized training targets
  plus EOS over the steps of one pass), parameters, peak resident memory of train.py (from
  logs/train.csv's peak_rss_mb, or with --rss-log-dir from a `/usr/bin/time -v` log named
  RUN_NAME.log there).

Prints one Markdown table; --json keeps every figure and signature; --plot draws dev BLEU against
minutes and steps for all runs in one PNG (nmt.train.plotting.plot_runs). Decoding speed needs an
otherwise idle machine, like any timing.

--summary writes the table of current figures at the top of docs/RESULTS.md from the kept run files
alone (no TensorFlow, no training): the --json files and run directories (config.yaml, train.csv)
under docs/results/, and docs/results/runs.yaml, which says on which CPU and on which day each run
ran. A row is a run of a shipped config (configs/*.yaml) as the file is now: its config.yaml may
differ from the shipped one only in the time budget (train.max_time), the epoch bound
(train.epochs, shown), the progress display (train.verbose), the translation direction
(corpus.src_lang/tgt_lang) and keys that did not exist yet and that the shipped file leaves null or
at their declared default. Of the runs of one config, direction, budget and CPU the latest is shown.
--check changes nothing and exits with status 1 when the table in docs/RESULTS.md is not the one
these files give.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nmt.errors import OneLineArgumentParser, UserError  # noqa: E402

RESULTS_MD = ROOT / "docs" / "RESULTS.md"
RESULTS_DIR = ROOT / "docs" / "results"
CONFIGS_DIR = ROOT / "configs"
SUMMARY_START, SUMMARY_END = "<!-- results-summary:start -->", "<!-- results-summary:end -->"
# config.yaml keys a summary row may set differently from the shipped config
RUN_SETTINGS = ("train.max_time", "train.epochs", "train.verbose", "corpus.src_lang", "corpus.tgt_lang")
SHOWN_SETTINGS = ("train.epochs",)  # of those, the ones the row names


def parse_args(argv=None) -> argparse.Namespace:
    p = OneLineArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="*", type=Path, metavar="RUN_DIR")
    p.add_argument("--data", type=Path, default=None, help="directory with the raw test files")
    p.add_argument("--summary", action="store_true", help="write the summary table of docs/RESULTS.md")
    p.add_argument("--check", action="store_true", help="with --summary: only check that the table is current")
    p.add_argument("--test", default="test2016", help="test file stem (default: test2016)")
    p.add_argument("--src", default=None, help="source language suffix (default: the run's corpus.src_lang)")
    p.add_argument("--tgt", default=None, help="target language suffix (default: the run's corpus.tgt_lang)")
    p.add_argument("--beams", default="1,5", help="beam sizes to score (default: 1,5)")
    p.add_argument("--json", type=Path, default=None, help="write every figure and signature here")
    p.add_argument("--plot", type=Path, default=None, help="write dev BLEU curves of all runs here (PNG)")
    p.add_argument("--rss-log-dir", type=Path, default=None, help="where RUN_NAME.log holds `time -v` output")
    args = p.parse_args(argv)
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


# ------------------------------------------------------------------------- the summary of RESULTS.md


def _flat(tree: dict, prefix: str = "") -> dict:
    """{"train": {"epochs": 3}} -> {"train.epochs": 3}."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _yaml(path: Path) -> dict:
    import yaml

    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def declared_defaults() -> dict:
    """{"section.key": default} of every config field (nmt.config, which needs no TensorFlow)."""
    from nmt import config

    return {
        f"{section}.{name}": list(default) if isinstance(default, tuple) else default
        for section, cls in config.SECTIONS.items()
        for name, default, _, _ in cls.declarations()
    }


def shipped_config(run_config: dict, shipped: dict[str, dict], defaults: dict) -> tuple[str, dict] | None:
    """(name of the shipped config the run used, its differing RUN_SETTINGS {key: run value}), or None
    when the run's flat config differs from every shipped one in anything else. A key the run does not
    have (it was added later) counts as the same when the shipped file leaves it null or at its declared
    default, which keeps the earlier behaviour."""
    for name, config in shipped.items():
        differing = {}
        for key in sorted(set(run_config) | set(config)):
            if key not in run_config and (config.get(key) is None or config.get(key) == defaults.get(key, KeyError)):
                continue  # a key added after the run, set in the shipped file to what the run did
            if run_config.get(key, KeyError) != config.get(key, KeyError):
                differing[key] = run_config.get(key)
        if set(differing) <= set(RUN_SETTINGS):
            return name, differing
    return None


def summary_rows(results_dir: Path = RESULTS_DIR, configs_dir: Path = CONFIGS_DIR) -> list[dict]:
    """The rows of the summary: the latest run of each shipped config, direction, budget and CPU."""
    manifest = _yaml(results_dir / "runs.yaml")
    shipped = {p.name: _flat(_yaml(p)) for p in sorted(configs_dir.glob("*.yaml"))}
    defaults = declared_defaults()
    order = list(manifest["runs"])
    latest: dict[tuple, dict] = {}
    for path in sorted(results_dir.glob("*.json")):
        for result in json.loads(path.read_text(encoding="utf-8")):
            name = Path(result["run"]).name
            if name not in manifest["runs"]:
                raise UserError(f"{path}: run {name!r} is not in {results_dir / 'runs.yaml'} (its CPU and date)")
            if not (results_dir / name / "config.yaml").is_file():
                raise UserError(f"{path}: run {name!r} has no {results_dir / name / 'config.yaml'}")
            run_config = _flat(_yaml(results_dir / name / "config.yaml"))
            match = shipped_config(run_config, shipped, defaults)
            if match is None:
                continue
            config_name, differing = match
            entry = manifest["runs"][name]
            cpu = manifest["cpus"][entry["cpu"]]
            precision = run_config["train.precision"]
            if precision == "auto":
                precision = "mixed_bfloat16" if "bf16" in cpu["flags"] else "float32"
            max_time = run_config.get("train.max_time")
            row = {
                "config": config_name,
                "set": ", ".join(f"{k}={differing[k]}" for k in SHOWN_SETTINGS if k in differing),
                "direction": result["direction"].replace("-", "→"),
                "budget": "none" if max_time is None else f"{max_time / 60:g} min",
                "cpu": f"{cpu['name']}, {cpu['flags']}",
                "precision": precision,
                "date": str(entry["date"]),
                "run": name,
                "steps": result["steps"],
                "minutes": result["minutes"],
                "bleu_beam5": result["beam5"]["bleu"],
                "bleu_greedy": result["beam1"]["bleu"],
                "chrf_beam5": result["beam5"]["chrf"],
                "note": manifest["notes"][entry["note"]] if entry.get("note") else "",
            }
            key = (row["config"], row["direction"], row["budget"], row["cpu"], row["precision"])
            if key not in latest or (row["date"], order.index(name)) > (
                latest[key]["date"],
                order.index(latest[key]["run"]),
            ):
                latest[key] = row
    return sorted(
        latest.values(),
        key=lambda r: (
            r["config"],
            r["direction"],
            float(r["budget"].split()[0]) if r["budget"] != "none" else 1e9,
            r["cpu"],
            r["date"],
        ),
    )


def summary_table(rows: list[dict]) -> str:
    head = [
        "config",
        "direction",
        "budget",
        "CPU",
        "precision",
        "date",
        "run",
        "steps",
        "minutes",
        "test BLEU beam 5",
        "greedy",
        "chrF beam 5",
        "note",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        config = f"`configs/{r['config']}`" + (f" ({r['set']})" if r["set"] else "")
        cells = [config, r["direction"], r["budget"], r["cpu"], r["precision"], r["date"], f"`{r['run']}`"]
        cells += [f"{r['steps']:,}", f"{r['minutes']:.1f}", f"{r['bleu_beam5']:.2f}", f"{r['bleu_greedy']:.2f}"]
        cells += [f"{r['chrf_beam5']:.2f}", r["note"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def with_summary(results_md: str, table: str) -> str:
    """RESULTS.md's text with the table between the summary markers replaced."""
    head, rest = results_md.split(SUMMARY_START + "\n", 1)
    _, tail = rest.split(SUMMARY_END, 1)
    return f"{head}{SUMMARY_START}\n{table}{SUMMARY_END}{tail}"


def write_summary(check: bool) -> int:
    text = RESULTS_MD.read_text(encoding="utf-8")
    new = with_summary(text, summary_table(summary_rows()))
    if check:
        if new != text:
            print(
                f"error: {RESULTS_MD}: the summary table is out of date; run python scripts/results.py --summary",
                file=sys.stderr,
            )
            return 1
        return 0
    RESULTS_MD.write_text(new, encoding="utf-8")
    print(f"wrote the summary table into {RESULTS_MD}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.summary:
            return write_summary(args.check)
        for run in args.runs:
            if not (run / "config.yaml").is_file() or not (run / "logs" / "train.csv").is_file():
                raise UserError(f"{run}: not a finished run directory (config.yaml, logs/train.csv)")
        from nmt.cli.quiet import import_tensorflow

        import_tensorflow(verbose=False)
        results = [measure(run, args) for run in args.runs]
        print(table(results, args.beams))
        for r in results:
            for b in args.beams:
                print(f"\n{Path(r['run']).name}, beam {b}:\n{r[f'beam{b}']['bleu_line']}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        if args.plot:
            from nmt.train.plotting import plot_runs

            print(plot_runs(args.runs, args.plot), file=sys.stderr)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
