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
import csv
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from nmt import rundir
from nmt.errors import ArgumentParser, UserError

EMPTY = "—"  # a cell without a value
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


# ------------------------------------------------------------------------------------------ reading a run


@dataclass
class Run:
    """What the files of one run directory say: its config (a mapping, None without config.yaml), its
    results.json (None without one) and its per-epoch log's last step, last minutes and best dev BLEU."""

    path: Path
    config: dict | None
    results: dict | None
    steps: int | None
    minutes: float | None
    best_dev_bleu: float | None


def log_file(run_dir: Path, name: str) -> Path:
    """RUN_DIR/logs/NAME, or RUN_DIR/NAME where only that exists (a run kept in docs/results/)."""
    nested = run_dir / rundir.LOGS_DIR / name
    return run_dir / name if not nested.is_file() and (run_dir / name).is_file() else nested


def read_run(path) -> Run:
    """The run directory at path, its files read and checked (one-line UserErrors naming the file)."""
    run_dir = Path(path)
    if not run_dir.exists():
        raise UserError(f"{run_dir}: no such run directory")
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a directory (expected a run directory written by train.py)")
    config_path, results_path = run_dir / rundir.CONFIG_FILE, run_dir / rundir.RESULTS_FILE
    epochs_path, steps_path = log_file(run_dir, rundir.EPOCHS_LOG), log_file(run_dir, rundir.STEPS_LOG)
    if not any(p.exists() for p in (config_path, results_path, epochs_path, steps_path)):
        raise UserError(
            f"{run_dir}: not a run directory (no {rundir.CONFIG_FILE}, {rundir.RESULTS_FILE} or "
            f"{rundir.LOGS_DIR}/{rundir.EPOCHS_LOG} written by train.py)"
        )
    steps, minutes, best = read_epochs(epochs_path)
    return Run(run_dir, read_config(config_path), read_results(results_path), steps, minutes, best)


def _reading_error(path: Path, error: Exception, expected: str) -> UserError:
    if isinstance(error, UnicodeDecodeError):
        return UserError(f"{path}: damaged, not UTF-8 text (byte {error.start}); expected {expected}")
    if isinstance(error, OSError):
        return UserError(f"{path}: cannot read it ({error.strerror or error})")
    return UserError(f"{path}: damaged ({' '.join(str(error).split())}); expected {expected}")


def read_config(path: Path) -> dict | None:
    """config.yaml as a mapping of sections (not checked against today's fields: a run's config may be older
    than a field), or None when there is none."""
    import yaml

    if not path.exists():
        return None
    expected = "the config.yaml train.py writes"
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise _reading_error(path, error, expected) from None
    if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
        raise UserError(f"{path}: damaged (not a mapping of sections); expected {expected}")
    return values


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _score(value) -> bool:
    return isinstance(value, dict) and all(value.get(k) is None or _number(value[k]) for k in ("bleu", "chrf"))


#: The fields of results.json that the table reads: (a check of a non-null value, what it should be). A
#: field may be missing or null (a run older than it); fields not listed here are kept as they are.
RESULT_FIELDS = {
    "dev": (_score, "an object with numbers bleu and chrf"),
    "test": (_score, "an object with numbers bleu and chrf"),
    "length_penalty": (_number, "a number"),
    "beam_size": (lambda v: _number(v) and v == int(v), "an integer"),
    "steps": (lambda v: _number(v) and v == int(v), "an integer"),
    "epochs": (_number, "a number"),
    "minutes": (_number, "a number"),
    "stopped": (lambda v: isinstance(v, str), "a string"),
    "device": (
        lambda v: (
            isinstance(v, dict)
            and isinstance(v.get("cpu"), (str, type(None)))
            and isinstance(v.get("gpus") or [], list)
        ),
        'an object {"cpu": a string, "gpus": a list}',
    ),
    "precision": (lambda v: isinstance(v, str), "a string"),
    "versions": (lambda v: isinstance(v, dict), "an object"),
    "config_sha256": (lambda v: isinstance(v, str), "a string"),
    "init_from": (lambda v: isinstance(v, str), "a string"),
    "decoded": (
        lambda v: isinstance(v, dict) and all(k.isdigit() and _score(s) for k, s in v.items()),
        "an object {beam size: scores}",
    ),
}


def read_results(path: Path) -> dict | None:
    """results.json as a dict, its fields checked (RESULT_FIELDS), or None when there is none."""
    if not path.exists():
        return None
    expected = "the JSON object train.py writes when training ends"
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise _reading_error(path, error, expected) from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise UserError(f"{path}: damaged, not JSON ({error.msg} at {where}); expected {expected}") from None
    if not isinstance(values, dict):
        raise UserError(f"{path}: damaged (a JSON {type(values).__name__}, not an object); expected {expected}")
    for key, (valid, what) in RESULT_FIELDS.items():
        if values.get(key) is not None and not valid(values[key]):
            shown = json.dumps(values[key])
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise UserError(f"{path}: damaged ({key!r} is {shown}, expected {what}); expected {expected}")
    return values


def read_epochs(path: Path) -> tuple[int | None, float | None, float | None]:
    """(the last step, the last minutes, the best dev BLEU) of a per-epoch log (logs/train.csv); None for
    what it lacks (no file yet, a column an older run did not log, a line cut short by a kill)."""
    if not path.is_file():
        return None, None, None
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise _reading_error(path, error, "the per-epoch log train.py writes (CSV)") from None

    def values(column: str) -> list[float]:
        found = []
        for row in rows:
            try:
                value = float(row.get(column) or "nan")
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                found.append(value)
        return found

    steps, minutes, bleu = values("step"), values("minutes"), values("val_bleu")
    return (int(steps[-1]) if steps else None, minutes[-1] if minutes else None, max(bleu) if bleu else None)


# -------------------------------------------------------------------------------------------- the table


def _get(tree: dict | None, *keys):
    for key in keys:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def direction(config: dict | None) -> str | None:
    src, tgt = _get(config, "corpus", "src_lang"), _get(config, "corpus", "tgt_lang")
    return f"{src}→{tgt}" if src and tgt else None


def model_name(config: dict | None) -> str | None:
    """The architecture, and for attention where the attention sits (bahdanau or luong)."""
    architecture = _get(config, "model", "architecture")
    position = _get(config, "model", "attention_position")
    if architecture == "attention" and position:
        return f"attention ({position})"
    return architecture


def _text(value) -> str:
    """A cell: "—" for nothing, lists and objects written out, no line breaks or column bars."""
    if value is None or value == "" or value == []:
        return EMPTY
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    elif isinstance(value, dict):
        value = ", ".join(f"{k}: {v}" for k, v in value.items())
    return " ".join(str(value).split()).replace("|", "\\|")


def _fixed(value, digits: int) -> str:
    return EMPTY if value is None else f"{value:.{digits}f}"


def _count(value) -> str:
    return EMPTY if value is None else f"{int(value):,}"


def row(run: Run, label: str) -> dict[str, str]:
    """{column: cell} of one run."""
    results = run.results
    known = results or {}
    gpus = _get(results, "device", "gpus")
    return {
        "run": _text(label),
        "direction": _text(direction(run.config)),
        "model": _text(model_name(run.config)),
        "steps": _count(known.get("steps", run.steps) if results else run.steps),
        "minutes": _fixed(known.get("minutes", run.minutes) if results else run.minutes, 1),
        "stopped": NO_RESULTS if results is None else _text(known.get("stopped")),
        "best epoch dev BLEU": _fixed(run.best_dev_bleu, 2),
        "dev BLEU": _fixed(_get(results, "dev", "bleu"), 2),
        "test BLEU": _fixed(_get(results, "test", "bleu"), 2),
        "test chrF": _fixed(_get(results, "test", "chrf"), 2),
        "beam": _count(known.get("beam_size")),
        "length penalty": EMPTY if known.get("length_penalty") is None else f"{known['length_penalty']:g}",
        "precision": _text(known.get("precision")),
        "CPU": _text(_get(results, "device", "cpu")),
        "GPU": _text(gpus),
        "weights": _text(known.get("weights")),
        "init from": _text(known.get("init_from")),
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


def write_text(path: Path, text: str, what: str) -> None:
    """Writes a file atomically (nmt.files); a failure is one line naming the option and the file."""
    from nmt.files import atomic_write_text, write_error

    try:
        atomic_write_text(path, text, what=what)
    except OSError as error:  # the parent directory could not be made
        raise write_error(path, error, what) from None


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
