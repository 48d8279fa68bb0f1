#!/usr/bin/env python
"""The table and the curves of training runs, and the summary of docs/RESULTS.md: no TensorFlow, no decoding.

    python -m nmt report RUN_DIR [RUN_DIR ...] [--labels NAME ...] [--plot PNG] [--json FILE]
    python -m nmt report --summary [--check]

For every run directory, one row of a Markdown table on standard output, read from the files training
wrote: RUN_DIR/results.json (the final scores, written when training ends), config.yaml (the direction
src→tgt and the model) and logs/train.csv (the best dev BLEU of the epochs). The columns: run, direction,
model, steps, minutes of training, why training stopped, the best epoch's dev BLEU (train.eval_beam_size,
greedy by default), the final dev BLEU, test BLEU and test chrF (decoded with the beam and length penalty
shown), the precision policy and the CPU; and, where a results.json has them, the GPUs, which weights
model.keras holds (`weights`) and the run it was fine-tuned from (`init_from`). Other fields of
results.json are shown by --json only. A run without results.json (still training, killed, or trained
before results.json existed) is a row all the same, with what logs/train.csv holds (steps, minutes, the
best epoch's dev BLEU): its "stopped" cell reads "no results.json", its other cells "—", as do the
scores of a split the run did not have. A directory kept under docs/results/ (config.yaml, train.csv and
results.json side by side, no logs/) reads like a run directory. A path that is none of these, or a
damaged results.json, config.yaml or train.csv, is a one-line error that names the file.

--plot draws the curves of all the runs in one PNG (`nmt.train.plotting.plot_runs`: loss, dev BLEU
against steps and against minutes, learning rate; matplotlib is imported only then); --labels names the
runs in the table and the plot (default: the directory names); --json writes the runs as JSON, each with
every field of its results.json. scripts/plot_run.py is this command with --plot.

--summary writes the summary table at the top of docs/RESULTS.md from the records kept under
docs/results/ (`nmt.cli.summary`; --check only compares).

What `nmt report` does not do is decode: measuring greedy and beam BLEU of a test set again, and the
decoding speed, loads the model and TensorFlow, and stays in scripts/results.py (whose --keep writes
such a record into docs/results/).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from nmt import rundir
from nmt.cli.records import EMPTY, Run, cell, count, direction, fixed, get, model_name, read_run, write_text
from nmt.errors import ArgumentParser, UserError

NO_RESULTS = f"no {rundir.RESULTS_FILE}"  # the "stopped" cell of a run without results.json


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "runs", nargs="*", metavar="RUN_DIR", help="run directories written by train.py (or kept in docs/results/)"
    )
    parser.add_argument(
        "--labels", nargs="+", metavar="NAME", help="one name per run, for the table and the plot (default: dir names)"
    )
    parser.add_argument("--plot", metavar="PNG", help="draw the curves of all the runs into this PNG")
    parser.add_argument("--json", metavar="FILE", help="write the runs as JSON, with every field of their results.json")
    parser.add_argument(
        "--summary", action="store_true", help="write the summary table of docs/RESULTS.md from docs/results/"
    )
    parser.add_argument(
        "--check", action="store_true", help="with --summary: change nothing; exit 1 if the table is out of date"
    )
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.summary:
        options = {"RUN_DIR": args.runs, "--labels": args.labels, "--plot": args.plot, "--json": args.json}
        given = [name for name, value in options.items() if value]
        if given:
            parser.error(f"--summary takes no {', '.join(given)}: it reads docs/results/")
    elif args.check:
        parser.error("--check goes with --summary")
    elif not args.runs:
        parser.error("expected one or more RUN_DIR (or --summary)")
    elif args.labels is not None and len(args.labels) != len(args.runs):
        parser.error(f"--labels: {len(args.labels)} labels for {len(args.runs)} runs; give one per RUN_DIR")
    return args


# -------------------------------------------------------------------------------------------- the table


def row(run: Run, label: str) -> dict[str, str]:
    """{column: cell} of one run."""
    results = run.results
    known = results or {}
    gpus = get(results, "device", "gpus")
    return {
        "run": cell(label),
        "direction": cell(direction(run.config)),
        "model": cell(model_name(run.config)),
        "steps": count(known.get("steps", run.steps) if results else run.steps),
        "minutes": fixed(known.get("minutes", run.minutes) if results else run.minutes, 1),
        "stopped": NO_RESULTS if results is None else cell(known.get("stopped")),
        "best epoch dev BLEU": fixed(run.best_dev_bleu, 2),
        "dev BLEU": fixed(get(results, "dev", "bleu"), 2),
        "test BLEU": fixed(get(results, "test", "bleu"), 2),
        "test chrF": fixed(get(results, "test", "chrf"), 2),
        "beam": count(known.get("beam_size")),
        "length penalty": EMPTY if known.get("length_penalty") is None else f"{known['length_penalty']:g}",
        "precision": cell(known.get("precision")),
        "CPU": cell(get(results, "device", "cpu")),
        "GPU": cell(gpus),
        "weights": cell(known.get("weights")),
        "init from": cell(known.get("init_from")),
    }


#: Columns shown only when some run has a value there.
OPTIONAL_COLUMNS = ("GPU", "weights", "init from")


def labels_of(runs: list[Run], labels: list[str] | None) -> list[str]:
    """The given labels, or each directory's name (the path as given where two runs share a name)."""
    if labels is not None:
        return list(labels)
    names = [run.path.name or str(run.path) for run in runs]
    return [name if names.count(name) == 1 else str(run.path) for name, run in zip(names, runs)]


def table(runs: list[Run], labels: list[str]) -> str:
    """The Markdown table of the runs, and a line naming the runs without results.json."""
    rows = [row(run, label) for run, label in zip(runs, labels)]
    columns = [c for c in rows[0] if c not in OPTIONAL_COLUMNS or any(r[c] != EMPTY for r in rows)]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(r[c] for c in columns) + " |" for r in rows]
    unfinished = [label for run, label in zip(runs, labels) if run.results is None]
    if unfinished:
        lines += [
            "",
            f"{', '.join(unfinished)}: {NO_RESULTS} (still training, stopped before the end of training, or older "
            f"than results.json); steps, minutes and the best epoch's dev BLEU come from {rundir.LOGS_DIR}/"
            f"{rundir.EPOCHS_LOG}, the other cells are {EMPTY}.",
        ]
    return "\n".join(lines) + "\n"


def as_json(runs: list[Run], labels: list[str]) -> str:
    records = [
        {
            "run": label,
            "dir": str(run.path),
            "direction": direction(run.config),
            "model": model_name(run.config),
            "train_csv": {"steps": run.steps, "minutes": run.minutes, "best_dev_bleu": run.best_dev_bleu},
            "results": run.results,
        }
        for run, label in zip(runs, labels)
    ]
    return json.dumps(records, indent=1, ensure_ascii=False) + "\n"


def plot(runs: list[Run], labels: list[str], png: str) -> Path:
    from nmt.train.plotting import plot_runs

    try:
        return plot_runs([run.path for run in runs], png, labels)
    except OSError as error:
        raise UserError(f"--plot {png}: cannot write it ({error.strerror or error})") from None


# ------------------------------------------------------------------------------------------ the command


def main(argv=None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    try:
        args = parse_args(argv)
        if args.summary:
            from nmt.cli.summary import write_summary

            return write_summary(args.check, stdout, stderr)
        runs = [read_run(path) for path in args.runs]
        labels = labels_of(runs, args.labels)
        if args.plot:
            print(f"curves of {len(runs)} run(s): {plot(runs, labels, args.plot)}", file=stderr)
        if args.json:
            write_text(Path(args.json), as_json(runs, labels), "--json")
        stdout.write(table(runs, labels))
        stdout.flush()
    except UserError as error:
        print(f"error: {error}", file=stderr, flush=True)
        return 2
    except BrokenPipeError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
